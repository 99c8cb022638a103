"""Names that become file names or lines of output: what is refused, and why."""
import pytest

from jetmq.config import JobConfig
from jetmq.errors import InvalidNameError
from jetmq.names import MAX_NAME_BYTES, check_display_name, check_path_name, path_in


@pytest.mark.parametrize("name", ["hello-snapshot", "snap 1", "ünïcode-名前", "a.b", "x" * MAX_NAME_BYTES])
def test_plain_names_are_accepted(name):
    assert check_path_name("snapshot", name) == name


@pytest.mark.parametrize("name,reason", [
    ("/home/me/backup", "path separator"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("..", "starts with '.'"),
    (".", "starts with '.'"),
    (".hidden", "starts with '.'"),
    ("", "empty"),
    ("new\nline", "control"),
    ("tab\there", "control"),
    ("nul\0byte", "control"),
    ("x" * (MAX_NAME_BYTES + 1), "longer than"),
    ("é" * (MAX_NAME_BYTES // 2 + 1), "longer than"),  # counted in UTF-8 bytes
])
def test_names_that_are_paths_or_unprintable_are_refused_with_the_reason(name, reason):
    with pytest.raises(InvalidNameError, match=reason):
        check_path_name("snapshot", name)


def test_a_job_name_may_hold_a_slash_but_no_control_character():
    assert check_display_name("job", "etl/daily") == "etl/daily"
    with pytest.raises(InvalidNameError, match="control"):
        check_display_name("job", "forged\nline")


def test_a_name_is_refused_if_it_would_resolve_outside_its_store(tmp_path):
    store = tmp_path / "named"
    store.mkdir()
    (store / "link").symlink_to(tmp_path)  # a name may not lead out, even through a link
    assert path_in(store, "snapshot", "ok") == store / "ok"
    with pytest.raises(InvalidNameError, match="outside"):
        path_in(store, "snapshot", "link")


def test_job_config_checks_its_names_and_its_field_types():
    with pytest.raises(InvalidNameError):
        JobConfig(initial_snapshot_name="../elsewhere")
    with pytest.raises(InvalidNameError):
        JobConfig(name="two\nlines")
    with pytest.raises(TypeError):
        JobConfig.from_dict({"auto_scaling": "yes"})
    with pytest.raises(TypeError):
        JobConfig.from_dict({"snapshot_interval_ms": "10"})
