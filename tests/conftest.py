import os
import sys

import pytest

# Let `reference` be imported from the tests folder.
sys.path.insert(0, os.path.dirname(__file__))


def pytest_report_header(config):
    try:
        import autoconfig
        info = autoconfig.build_info()
        return [f"autoconfig build: target={info['target']} isa={info['isa']} "
                f"required={','.join(info['required_features']) or '-'}"]
    except Exception as e:  # the header must never break collection
        return [f"autoconfig build: not importable ({e})"]


@pytest.fixture(scope="session")
def ac():
    import autoconfig
    if autoconfig._ext is None:
        pytest.skip("autoconfig is not built/installed")
    return autoconfig
