"""The RQ dashboard can empty queues and delete jobs: superusers only, never support staff."""
import django_rq
import pytest
import rq


pytestmark = pytest.mark.django_db

QUEUE = "default"  # index 0 of RQ_QUEUES


@pytest.fixture
def queued():
    """One job waiting in the default queue (of this test run's Redis database)."""
    # A plain RQ queue: django-rq's own defers an enqueue to the commit the test never makes.
    queue = rq.Queue(QUEUE, connection=django_rq.get_connection(QUEUE))
    queue.empty()
    queue.enqueue("builtins.len", "abc")
    yield queue
    queue.empty()


def test_support_staff_cannot_open_the_dashboard_nor_empty_a_queue(support_client, queued):
    for url in ("/django-rq/", "/django-rq/queues/0/", "/django-rq/queues/0/empty/"):
        response = support_client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = support_client.post("/django-rq/queues/0/empty/", {"post": "yes"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert queued.count == 1
    assert 'href="/django-rq/"' not in support_client.get("/admin/").content.decode()


def test_a_superuser_opens_the_dashboard_and_can_empty_a_queue(admin_client, queued):
    assert admin_client.get("/django-rq/").status_code == 200
    assert admin_client.get("/django-rq/queues/0/empty/").status_code == 200
    admin_client.post("/django-rq/queues/0/empty/", {"post": "yes"})
    assert queued.count == 0


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get("/django-rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
