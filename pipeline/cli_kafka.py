"""`python -m pipeline kafka create-topics`: make the run's Kafka topics as sandcrawler has them.

Part of the one operator CLI (`pipeline.cli` registers it). What the topics
are is `pipeline.sinks.topics`; this reads `[kafka] hosts`, `env` and
`message_max_bytes` (or the options) and prints one line per topic.
"""

from __future__ import annotations

import argparse
import sys

from pipeline import config
from pipeline.cli_groups import add_group
from pipeline.sinks import topics


def cmd_create_topics(args: argparse.Namespace) -> int:
    """0: every topic created or already right; 1: a topic exists with other settings; 2: no broker."""
    kafka = config.kafka()
    hosts = args.hosts or kafka.hosts
    if not hosts:
        print("kafka create-topics: no broker: set [kafka] hosts or pass --hosts", file=sys.stderr)
        return 2
    specs = topics.topic_specs(args.env or kafka.env, kafka.message_max_bytes)
    try:
        outcomes = topics.ensure_topics(hosts, specs, args.replication_factor)
    except topics.TopicsError as e:
        print(f"kafka create-topics: {e}", file=sys.stderr)
        return 2
    for outcome in outcomes:
        print(outcome.line())
    if any(o.state == "mismatch" for o in outcomes):
        print("kafka create-topics: a topic exists with other settings; it was left as it is "
              "(fix it with the broker's tools, or delete and create it again)", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `kafka create-topics` on the operator CLI."""
    p, sub = add_group(subparsers, "kafka", help="the run's Kafka topics")
    s = sub.add_parser("create-topics", help="create the sandcrawler-{env}.* topics (12 partitions, "
                                             "compacted); check existing ones, one line per topic")
    s.add_argument("--hosts", help="bootstrap servers (default: [kafka] hosts)")
    s.add_argument("--env", help="topic env, sandcrawler-ENV.* (default: [kafka] env)")
    s.add_argument("--replication-factor", type=int, default=topics.BROKER_DEFAULT_REPLICATION,
                   help="replicas per partition (default: the broker's default.replication.factor)")
    s.set_defaults(func=cmd_create_topics)
    return p
