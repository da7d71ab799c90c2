"""scaling/fielddocs.py: a dataclass field's #: documentation, read from the source."""
import dataclasses
import subprocess
import sys
from pathlib import Path

from scaling.fielddocs import field_docs
from scaling.spec import ArchSpec


@dataclasses.dataclass
class Documented:
    #: The first line
    #: and the second.
    a: int = 1
    b: int = 2  # an ordinary comment is not documentation
    #: Documented c.

    c: int = 3


@dataclasses.dataclass
class Child(Documented):
    #: Overridden.
    a: int = 5
    #: New in the child.
    d: int = 4


def test_comment_lines_right_above_a_field_are_its_doc():
    assert field_docs(Documented) == {"a": "The first line and the second."}  # c's comment is not adjacent
    assert field_docs(Child) == {"a": "Overridden.", "d": "New in the child."}


def test_every_archspec_field_is_documented():
    docs = field_docs(ArchSpec)
    assert [f.name for f in dataclasses.fields(ArchSpec) if not docs.get(f.name)] == []
    assert docs["cardinality"] == "Groups of the bottleneck's 3x3 conv (ResNeXt's C; torchvision's ``groups``)."


def test_reading_the_docs_imports_nothing_heavy():
    probe = ("import sys; from scaling.fielddocs import field_docs; from scaling.spec import ArchSpec; "
             "field_docs(ArchSpec); print([m for m in ('torch', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
