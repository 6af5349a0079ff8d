"""The S3 stub limits a bucket's request rate as S3 does: 503 SlowDown, writes and reads apart."""
import requests

from standins.s3 import READ_LIMIT, WRITE_LIMIT, S3Stub


def test_a_bucket_asked_too_often_gets_503_slow_down_per_bucket_and_kind():
    with S3Stub(writes=(1, 60.0), reads=(2, 60.0)) as s3:
        first = requests.put(f"{s3.url}/bucket/a", data=b"one", timeout=5)
        second = requests.put(f"{s3.url}/bucket/b", data=b"two", timeout=5)
        other_bucket = requests.put(f"{s3.url}/other/a", data=b"three", timeout=5)
        reads = [requests.get(f"{s3.url}/bucket/a", timeout=5) for _ in range(3)]
    assert (first.status_code, second.status_code, other_bucket.status_code) == (200, 503, 200)
    assert second.headers["Content-Type"] == "application/xml"
    assert b"<Code>SlowDown</Code>" in second.content and b"<Message>" in second.content
    assert "/bucket/b" not in s3.objects  # the refused write stored nothing
    assert [read.status_code for read in reads] == [200, 200, 503]
    assert reads[0].content == b"one"


def test_the_default_limits_are_s3s_published_rates():
    assert (WRITE_LIMIT, READ_LIMIT) == ((3500, 1.0), (5500, 1.0))
