"""Letters to families and providers: templates per language, rendered to HTML and PDF."""
