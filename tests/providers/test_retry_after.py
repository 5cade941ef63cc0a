import pytest

from tokenlane.providers.openai import parse_retry_after

NOW = 1445412470.0  # Wed, 21 Oct 2015 07:27:50 GMT


@pytest.mark.parametrize(("value", "seconds"), [
    ("12", 12.0),
    ("0.5", 0.5),
    ("-3", 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),  # the HTTP-date form, against `now`
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
    (None, None),
    ("", None),
    ("soon", None),
    ("inf", None),
    ("nan", None),
    ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: not an HTTP date
])
def test_retry_after_forms(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds
