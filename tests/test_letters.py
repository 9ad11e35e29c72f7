"""Letters as a family reads them: every notice kind in English and Spanish, rendered to a
PDF whose text (read back with pypdf) carries what the family needs; every element of
22 CCR 42132 on a Notice of Action; every English template at grade 6 or below; the same
data always the same bytes. Synthetic people only."""

from __future__ import annotations

import io
import json
import re
from functools import lru_cache

import pytest
import textstat
from pydantic import ValidationError
from pypdf import PdfReader

from letters.catalog import KINDS, LANGUAGES, NOA_ACTIONS
from letters.render import HERE, body_text, render
from letters.samples import sample

CHILD = "Mateo Testcase"


def pdf_text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())  # line breaks fall anywhere in a paragraph


@lru_cache(maxsize=None)
def rendered(kind: str, language: str, county: str = "Kern", jurisdiction: str = "county") -> str:
    return pdf_text(render(sample(kind, language, county=county, jurisdiction=jurisdiction)).pdf)


def test_every_template_exists_in_every_language():
    for language in LANGUAGES:
        for kind in KINDS:
            assert (HERE / "templates" / language / f"{kind}.html.j2").exists(), f"{language}/{kind}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_a_pdf_with_what_the_family_needs(kind, language):
    text = rendered(kind, language)
    assert CHILD in text
    assert "Kern County CCS" in text  # the county office
    assert ("March 31, 2026" if language == "en" else "31 de marzo de 2026") in text  # California date
    assert "case-0a1b2c3d4e5f60718293" in text
    assert KINDS[kind].subject[language] in text
    assert "(916) 440-7370" in text  # free language help
    for fact in KINDS[kind].facts:  # the letter's own dates and facts are printed
        value = sample(kind, language).facts[fact]
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value) or fact in ("action", "basis", "closure", "outcome"):
            continue  # dates print long-form; codes print as sentences (checked below)
        assert value in text, fact


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("action", NOA_ACTIONS)
def test_notice_of_action_carries_every_element_of_22_ccr_42132(action, language):
    facts = {"action": action, "reason": "Your family lives in another county.", "basis": "eligibility",
             "appeal_until": "2026-04-30"}
    text = pdf_text(render(sample("notice_of_action", language, facts=facts)).pdf)
    en = language == "en"
    # the action
    assert ("What we decided" if en else "Lo que decidimos") in text
    decided = text.lower()
    assert ("denied" in decided or "said no" in decided or "with changes" in decided) if en else \
        ("negamos" in decided or "con cambios" in decided)
    # the reason
    assert "Your family lives in another county." in text
    # the regulation it rests on
    assert "22 CCR 41519 and HSC 123870" in text and "22 CCR 42132" in text
    # the right to appeal, how, and the time limit
    assert ("you have the right to appeal" if en else "tiene derecho a apelar") in text
    assert ("How to appeal: write to Kern County CCS" if en else "Cómo apelar: escriba a Kern County CCS") in text
    assert ("April 30, 2026" if en else "30 de abril de 2026") in text
    # the right to a fair hearing, and its time limit
    assert ("the right to a State fair hearing" if en else "derecho a una audiencia imparcial del Estado") in text
    assert ("within 14 days" if en else "dentro de 14 días") in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_appeal_path_follows_the_county(language):
    dependent = rendered("notice_of_action", language, county="Alpine", jurisdiction="state")
    independent = rendered("notice_of_action", language)
    state = "State CCS regional office decides appeals" if language == "en" else \
        "oficina regional de CCS del Estado decide las apelaciones"
    assert state in dependent and state not in independent
    assert "Alpine County CCS" in dependent


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_english_template_reads_at_grade_6_or_below(kind):
    grade = textstat.flesch_kincaid_grade(body_text(sample(kind)))
    assert grade <= 6, f"{kind}: Flesch-Kincaid grade {grade}"


def test_same_data_same_bytes_and_other_data_other_bytes():
    a = render(sample("notice_of_action")).pdf
    assert render(sample("notice_of_action")).pdf == a
    assert render(sample("notice_of_action", child_name="Lucia Testcase")).pdf != a
    # The PDF's dates are the letter's date, never the clock's.
    assert PdfReader(io.BytesIO(a)).metadata["/CreationDate"].startswith("D:20260331")


def in_new_thread(data) -> bytes:
    """The letter's PDF rendered on a new thread: its own FontConfiguration, stylesheet (and so
    taglines faces) and taglines pages, as a fresh renderer has."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as fresh:
        return fresh.submit(lambda: render(data).pdf).result()


def test_fonts_kept_between_letters_change_no_byte():
    """The font setup and subsets letters.fonts keeps, and the taglines page letters.layout
    keeps (for CPU), print exactly what a fresh renderer prints, letter after letter, whatever
    came before."""
    from letters import fonts

    def cold(data) -> bytes:  # a new thread, and no subset or font file kept
        fonts._subsets.clear()
        fonts._faces.clear()
        fonts._streams.clear()
        return in_new_thread(data)

    # A name in Chinese is set in the whole CJK collection (a font file worth keeping).
    letters = [sample("notice_of_action"), sample("case_open", "es", child_name="Zoë Ðặng Testcase"),
               sample("notice_of_action", child_name="Lucia Testcase"), sample("case_open", child_name="王小明")]
    expected = [cold(d) for d in letters]
    assert [render(d).pdf for d in letters + letters] == expected + expected
    assert fonts._subsets and fonts._faces and fonts._streams  # kept, and used for the second round


def _fonts_and_pages(pdf: bytes) -> tuple[set[str], list[str]]:
    reader = PdfReader(io.BytesIO(pdf))
    names = {str(font.get_object()["/BaseFont"]).split("+")[-1]
             for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    return names, [page.extract_text() for page in reader.pages]


@pytest.mark.parametrize("language", ["en", "es"])
def test_taglines_in_fonts_cut_to_their_characters_print_the_same_in_a_third_of_the_bytes(language, monkeypatch):
    """The taglines are set in their fonts cut down to the taglines' characters: every page
    reads the same as with the whole fonts, and the letter is less than a third of the size
    (the whole CJK font's subset alone was 80% of a letter)."""
    from letters import fonts

    data = sample("notice_of_action", language)
    cut = in_new_thread(data)
    with monkeypatch.context() as m:
        m.setattr(fonts, "tagline_faces_css", lambda text: "")  # no fc-match, say: the whole fonts
        whole = in_new_thread(data)
    cut_fonts, cut_pages = _fonts_and_pages(cut)
    whole_fonts, whole_pages = _fonts_and_pages(whole)
    assert cut_pages == whole_pages
    assert "中文: 為主要語言" in cut_pages[-1] and "فارسی" in cut_pages[-1]
    assert {"CCS-Taglines-CJK", "CCS-Taglines-CJK-Bold", "CCS-Taglines-Sans"} <= cut_fonts
    assert "Noto-Sans-CJK-TC" in whole_fonts and not any("Noto" in name for name in cut_fonts)
    assert len(cut) * 3 < len(whole), (len(cut), len(whole))


def test_cut_faces_are_made_once_per_machine_and_are_the_same_bytes(tmp_path, monkeypatch):
    from letters import fonts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fonts, "_cut_faces", {})
    first = fonts.cut_face("Noto Sans CJK TC", "bold", "中文:")
    stored = list((tmp_path / "ccs" / "letter-fonts").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == first
    # The same bytes on any day: the cut face carries the font's own timestamp, not the clock's.
    from fontTools.ttLib import TTFont

    path, index = fonts._match("Noto Sans CJK TC", "bold")
    assert TTFont(io.BytesIO(first))["head"].modified == TTFont(path, fontNumber=index)["head"].modified
    monkeypatch.setattr(fonts, "_cut_faces", {})
    monkeypatch.setattr(fonts, "_cut", lambda *a: pytest.fail("cut again, not read from the cache"))
    assert fonts.cut_face("Noto Sans CJK TC", "bold", "中文:") == first
    monkeypatch.setattr(fonts, "_cut_faces", {})
    assert fonts.cut_face("No Such Family Testcase", "normal", "abc") is None


def test_taglines_are_sourced_and_printed_in_their_script():
    taglines = json.loads((HERE / "taglines.json").read_text())
    assert len(taglines["languages"]) + len(taglines["unsourced"]) >= 15
    for t in taglines["languages"]:
        assert t["source"].startswith("https://www.dhcs.ca.gov/"), t["code"]
    text = rendered("application_packet", "en")
    assert "Tiếng Việt" in text and "中文" in text
    for t in taglines["languages"]:
        if t.get("dir") != "rtl":  # pypdf returns right-to-left runs reordered
            assert t["text"][:20] in text, t["code"]


@pytest.mark.parametrize("kind", ["case_open", "notice_of_action"])  # two pages and three
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_taglines_page_ends_every_letter_and_is_counted_in_its_footers(kind, language):
    """The taglines page is laid out once and joined to each letter (letters.layout): it is
    still the letter's last page, numbered "N / N", and every page before it counts it."""
    pages = [" ".join(p.extract_text().split())
             for p in PdfReader(io.BytesIO(render(sample(kind, language)).pdf)).pages]
    n = len(pages)
    assert n == (3 if kind == "notice_of_action" else 2)
    for i, page in enumerate(pages, 1):
        assert page.endswith(f"{i} / {n}"), (i, page[-40:])
    *own, last = pages
    assert last.startswith("Language help / Ayuda en su idioma") and "中文" in last and "Tiếng Việt" in last
    assert ("Source of these texts" if language == "en" else "Fuente de estos textos") in last
    assert CHILD not in last and all("中文" not in page for page in own)


def test_an_unsourced_county_prints_the_state_contact_not_an_invented_one():
    text = rendered("case_open", "en", county="Alpine")
    assert "Alpine County CCS" in text
    assert "State contact: California Department of Health Care Services" in text
    assert "P.O. Box 997413" in text


def test_bad_letter_data_is_refused_with_what_is_missing():
    with pytest.raises(ValidationError, match="needs appeal_until"):
        sample("notice_of_action", facts={"action": "deny_case", "reason": "x", "basis": "eligibility"})
    with pytest.raises(ValidationError, match="no letter template for notice kind 'task_overdue'"):
        sample("task_overdue")
    with pytest.raises(ValidationError, match="unknown Notice of Action action"):
        sample("notice_of_action", facts={"action": "maybe", "reason": "x", "basis": "eligibility",
                                          "appeal_until": "2026-04-30"})


def test_preferred_language_is_captured_at_referral_and_checked():
    from models.referral import Child

    base = {"first_name": "Mateo", "last_name": "Testcase", "date_of_birth": "2019-03-14", "county": "Kern"}
    assert Child(**base).preferred_language == "en"  # default English
    assert Child(**base, preferred_language="es").preferred_language == "es"
    with pytest.raises(ValidationError, match="'en', 'es', 'vi'"):  # the error lists what is accepted
        Child(**base, preferred_language="Spanish")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_closure_reason_is_explained_in_the_closure_letter(language):
    from typing import get_args

    from models.case import ClosureReason

    fallback = "See the note from your case manager." if language == "en" else "Vea la nota"
    for reason in get_args(ClosureReason):
        facts = {"closure": reason} | ({"merged_into": "case-kept0001"} if reason == "merged" else {})
        text = body_text(sample("case_closed", language, facts=facts))
        assert fallback not in text, reason
        if reason == "merged":  # the family learns which case number their child's care goes on under
            assert "case-kept0001" in text
