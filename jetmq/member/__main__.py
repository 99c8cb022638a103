"""Entry of a member forked by the master: ``python -m jetmq.member <config json>``."""
import json
import logging
import sys

from jetmq.config import MemberConfig
from jetmq.logs import configure_logging
from jetmq.member.runtime import MemberRuntime


def main() -> int:
    config = MemberConfig(**json.loads(sys.argv[1]))
    configure_logging(f"member-{config.uuid[:8]}", stream=sys.stderr)
    logging.getLogger(__name__).debug("config %s", config)
    return MemberRuntime(config).run()


if __name__ == "__main__":
    sys.exit(main())
