"""Entry of a member forked by the master: ``python -m jetmq.member <config json>``.

With JETMQ_PROFILE_DIR set, the member runs under cProfile and writes its profile
to ``<dir>/member-<uuid8>.prof`` when it exits (a development aid).
"""
import json
import logging
import os
import sys

from jetmq.config import MemberConfig
from jetmq.logs import configure_logging
from jetmq.member.lifeline import die_with_parent
from jetmq.member.runtime import ExitCode, MemberRuntime


def main() -> int:
    config = MemberConfig(**json.loads(sys.argv[1]))
    if config.forked and not die_with_parent(config.master_pid):
        return int(ExitCode.MASTER_LOST)
    configure_logging(f"member-{config.uuid[:8]}", stream=sys.stderr)
    logging.getLogger(__name__).debug("config %s", config)
    profile_dir = os.environ.get("JETMQ_PROFILE_DIR")
    if not profile_dir:
        return MemberRuntime(config).run()
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(MemberRuntime(config).run)
    finally:
        profiler.dump_stats(os.path.join(profile_dir, f"member-{config.uuid[:8]}.prof"))


if __name__ == "__main__":
    sys.exit(main())
