"""scaling/wording.py: counts read as English ("1 epoch", not "1 epochs"), where titles and lines use them."""
from reports.style import regime_title
from scaling.wording import plural


def test_one_is_singular_and_other_counts_plural():
    assert plural(1, "epoch") == "1 epoch" and plural(2, "epoch") == "2 epochs" and plural(0, "epoch") == "0 epochs"
    assert plural(1, "one-dimension step") == "1 one-dimension step"
    assert plural(3, "class", "classes") == "3 classes" and plural(12345, "layout", fmt=",") == "12,345 layouts"


def test_regime_titles_count_epochs_in_words():
    assert regime_title("short", 1) == "short (1 epoch)" and regime_title("rs-10", 10) == "rs-10 (10 epochs)"
