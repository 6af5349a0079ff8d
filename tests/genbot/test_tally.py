"""genbot.tally: the counts a batch keeps, named once."""
import pytest

from genbot.tally import Tally


class Outcomes(Tally):
    counts = ("sent", "failed")


def test_counts_start_at_zero_add_by_name_and_come_out_in_order():
    tally = Outcomes(failed=2)
    tally.add("sent")
    tally.sent += 1
    tally.add("failed", 3)
    assert tally.as_dict() == {"sent": 2, "failed": 5}
    assert tally == Outcomes(sent=2, failed=5) and tally != Outcomes(sent=2)


def test_a_count_it_does_not_name_is_refused():
    with pytest.raises(TypeError):
        Outcomes(lost=1)
    with pytest.raises(KeyError):
        Outcomes().add("lost")
