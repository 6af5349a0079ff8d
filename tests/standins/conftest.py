import pytest


@pytest.fixture
def start_stub():
    """``start_stub(StubClass, **options)``: a provider stub started in a thread, stopped after the test."""
    started = []

    def start(stub_class, **options):
        stub = stub_class(**options).start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()
