"""A renderer whose process dies under its first letter (run in the rendering process by
tests/test_letter_delivery.py): the marker file named by CCS_TEST_RENDER_CRASH says it died."""

from __future__ import annotations

import os
from pathlib import Path

from letters.render import Letter, LetterData, render


def dies_once(data: LetterData) -> Letter:
    marker = Path(os.environ["CCS_TEST_RENDER_CRASH"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(70)  # as if killed (out of memory) in the middle of a layout
    return render(data)
