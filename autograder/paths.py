"""Where the course's files are: the repository root, the assignment, its sources and release.

Imports nothing: every part of the package reads these, so they sit below all of it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "channels"
SOURCE_DIR = ROOT / "solutions" / ASSIGNMENT
RELEASE_DIR = ROOT / "chapters" / ASSIGNMENT
