"""Config files read through the parsed-settings cache: never a stale or foreign answer."""

import marshal
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from traffic.toml_files import read_toml

CONFIG = 'site = "home"\n[quota]\nmonthly = "40 GB"\n'


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "traffic"


def test_the_second_read_comes_from_the_cache_and_equals_tomllib(tmp_path: Path,
                                                                  cache: Path) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(CONFIG)
    assert read_toml(path) == tomllib.loads(CONFIG)
    [kept] = cache.iterdir()
    assert kept.stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o077 == 0
    assert marshal.loads(kept.read_bytes()) == (CONFIG.encode(), tomllib.loads(CONFIG))
    assert read_toml(path) == tomllib.loads(CONFIG)


def test_an_edit_keeping_size_and_time_is_read_again(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(CONFIG)
    read_toml(path)
    stamp = path.stat()
    path.write_text(CONFIG.replace("40 GB", "50 GB"))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert read_toml(path)["quota"]["monthly"] == "50 GB"


def test_a_cache_file_of_another_user_is_not_trusted(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(CONFIG)
    read_toml(path)
    [kept] = cache.iterdir()
    kept.write_bytes(marshal.dumps((CONFIG.encode(), {"site": "planted"})))
    if os.geteuid() == 0:
        os.chown(kept, 65534, 65534)
        assert read_toml(path)["site"] == "home"
    else:
        assert read_toml(path)["site"] == "planted"  # the user's own cache is trusted


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01not marshal", marshal.dumps([1, 2])])
def test_a_damaged_cache_is_parsed_again(tmp_path: Path, cache: Path, garbage: bytes) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(CONFIG)
    read_toml(path)
    [kept] = cache.iterdir()
    kept.write_bytes(garbage)
    assert read_toml(path) == tomllib.loads(CONFIG)


def test_dates_are_read_without_a_cache(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "dated.toml"
    path.write_text("when = 2026-12-03T10:00:00Z\n")
    assert read_toml(path) == read_toml(path) == tomllib.loads(path.read_text())
    assert not cache.exists() or not list(cache.iterdir())


def test_invalid_toml_still_raises_with_a_cache_of_the_old_file(tmp_path: Path,
                                                                cache: Path) -> None:
    path = tmp_path / "traffic.toml"
    path.write_text(CONFIG)
    read_toml(path)
    path.write_text(CONFIG + "[quota\n")
    with pytest.raises(tomllib.TOMLDecodeError):
        read_toml(path)


def test_without_a_home_or_a_writable_cache_the_command_still_works(tmp_path: Path) -> None:
    config = tmp_path / "traffic.toml"
    config.write_text(CONFIG + f'[store]\nurl = "sqlite://{tmp_path}/traffic.db"\n')
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    for env in ({"PATH": "/usr/bin:/bin"},
                {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}):
        done = subprocess.run([sys.executable, "-m", "cli", "--config", str(config),
                               "check-config"], capture_output=True, text=True, env=env)
        assert done.returncode == 0 and 'monthly = "40 GB"' in done.stdout, done.stderr


def test_the_cache_of_a_removed_config_file_is_dropped(tmp_path: Path, cache: Path) -> None:
    gone, kept = tmp_path / "gone%s.toml", tmp_path / "kept.toml"
    gone.write_text(CONFIG)
    read_toml(gone)
    gone.unlink()
    kept.write_text(CONFIG)
    read_toml(kept)
    assert [path.name for path in cache.iterdir()] == [
        str(kept).replace("/", "%s") + ".v1.marshal"]
