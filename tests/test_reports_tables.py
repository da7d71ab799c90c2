"""reports/tables.py: the normalised results tables the reports read."""
import dataclasses

from reports.tables import ARCH_FIELDS
from scaling.spec import ArchSpec


def test_arch_fields_are_every_archspec_field_and_the_nominal_depth():
    spec_fields = [f.name for f in dataclasses.fields(ArchSpec)]
    assert [f for f in ARCH_FIELDS if f != "depth_number"] == spec_fields
    assert ARCH_FIELDS[ARCH_FIELDS.index("depth") + 1] == "depth_number"
    assert {"block_form", "shortcut", "sk_paths", "sk_reduction", "sk_min_width", "sk_dilated"} <= set(ARCH_FIELDS)
