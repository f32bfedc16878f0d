"""Where `msa demo` and `msa load` find the platform: a running `msa dev up` first, then what
docker compose publishes (tests/containers/test_demo.py), else the default ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from msa_cli.where import Urls, find_urls, forget_dev_urls, write_dev_urls


def test_the_urls_a_running_dev_up_wrote_are_found_and_forgotten_with_it(tmp_path: Path) -> None:
    urls = Urls(web="http://127.0.0.1:4101", mobile="http://127.0.0.1:4102")
    write_dev_urls(tmp_path, urls)
    found, source = find_urls(tmp_path, tmp_path)  # no compose file here: compose finds nothing
    assert found == urls
    assert "msa dev up" in source
    forget_dev_urls(tmp_path)
    assert find_urls(tmp_path, tmp_path) == (Urls(), "the default ports (nothing found running)")


def test_the_urls_of_a_dev_up_that_has_exited_are_not_used(tmp_path: Path) -> None:
    write_dev_urls(tmp_path, Urls(web="http://127.0.0.1:4101", mobile="http://127.0.0.1:4102"))
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    record = (tmp_path / "urls.json").read_text()
    (tmp_path / "urls.json").write_text(
        record.replace(f'"pid": {os.getpid()}', f'"pid": {exited.stdout.strip()}')
    )
    assert find_urls(tmp_path, tmp_path)[0] == Urls()


def test_a_dev_up_forgets_only_the_urls_it_wrote(tmp_path: Path) -> None:
    """A second `msa dev up` that fails to start must not hide the running one's addresses."""
    write_dev_urls(tmp_path, Urls(web="http://127.0.0.1:4101", mobile="http://127.0.0.1:4102"))
    record = (tmp_path / "urls.json").read_text()
    (tmp_path / "urls.json").write_text(record.replace(f'"pid": {os.getpid()}', f'"pid": {os.getppid()}'))
    forget_dev_urls(tmp_path)  # not ours: kept
    assert (tmp_path / "urls.json").exists()
    assert find_urls(tmp_path, tmp_path)[0].web == "http://127.0.0.1:4101"  # the parent lives


def test_a_broken_urls_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "urls.json").write_text("{not json")
    assert find_urls(tmp_path, tmp_path)[0] == Urls()
