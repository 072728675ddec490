import pytest

from tracker.config import DEFAULT_MAX_PIXELS, Settings


def test_defaults_follow_home(tmp_path, monkeypatch):
    for name in ("TRACKER_DATABASE_URL", "TRACKER_STORAGE_URL", "TRACKER_MAX_PIXELS", "TRACKER_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "h"))
    settings = Settings.from_env()
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'h' / 'tracker.db').resolve()}"
    assert settings.storage_url.startswith("file://") and settings.storage_url.endswith("/h/blobs")
    assert settings.max_pixels == DEFAULT_MAX_PIXELS


def test_environment_overrides_and_bad_values(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKER_DATABASE_URL", "postgresql+psycopg://u@db/tracker")
    monkeypatch.setenv("TRACKER_MAX_PIXELS", "5000000")
    settings = Settings.from_env()
    assert settings.database_url == "postgresql+psycopg://u@db/tracker"
    assert settings.max_pixels == 5_000_000
    monkeypatch.setenv("TRACKER_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="TRACKER_MAX_PIXELS"):
        Settings.from_env()
    monkeypatch.setenv("TRACKER_MAX_PIXELS", "-3")
    with pytest.raises(ValueError, match="positive"):
        Settings.from_env()
