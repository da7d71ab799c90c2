"""scaling/errors.py: a user error survives being copied and pickled (Ray does both to a trial's error)."""
import copy
import pickle

from scaling import ArchScaleError


def test_a_user_error_is_copied_and_pickled_whole():
    error = ArchScaleError("dataset.root", "cannot read image /data/x.jpg")
    for again in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(again) is ArchScaleError and (again.field, again.message) == (error.field, error.message)
        assert str(again) == "dataset.root: cannot read image /data/x.jpg"
