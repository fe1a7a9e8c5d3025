"""harness.criu.yard: which mounts are CRIU's cgroup yards, read from a mountinfo file."""

from __future__ import annotations

from pathlib import Path

from harness.criu import yard

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw shared:9 - tmpfs tmpfs rw
901 22 0:90 / /tmp/criu-harness-x-1/images/server/.criu.cgyard.AbC123 rw - tmpfs none rw
902 901 0:29 / /tmp/criu-harness-x-1/images/server/.criu.cgyard.AbC123/cpu rw - cgroup none rw,cpu
903 901 0:30 / /tmp/criu-harness-x-1/images/server/.criu.cgyard.AbC123/unified rw - cgroup2 none rw
904 22 0:91 / /tmp/with\\040space/criu-harness-y-2/images/client/.criu.cgyard.Z rw - tmpfs none rw
905 22 0:92 / /tmp/elsewhere/.criu.cgyardnot rw - tmpfs none rw
"""


def test_the_yards_under_a_directory_each_once(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert yard.yards(Path("/tmp"), info) == [
        Path("/tmp/criu-harness-x-1/images/server/.criu.cgyard.AbC123"),
        Path("/tmp/with space/criu-harness-y-2/images/client/.criu.cgyard.Z"),
    ]
    assert yard.yards(Path("/tmp/criu-harness-x-1/images/client"), info) == []
    assert yard.yards(Path("/sys"), info) == []


def test_nothing_to_release_is_nothing_released(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert yard.release(tmp_path, info) == []
