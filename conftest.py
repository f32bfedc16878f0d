"""Root conftest: the shared fixtures (real Redis, Zipkin, the local topology) for every test."""

# pytest's importlib mode names chassis/tests/test_x.py "chassis.tests.test_x"; importing the real
# chassis package first keeps that name from shadowing it with the bare folder.
import chassis  # noqa: F401

pytest_plugins = ["msa_testing.fixtures", "msa_testing.apps", "msa_testing.figures"]
