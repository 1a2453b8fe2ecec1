"""How the Ray engine spreads a job (no Ray started): one actor per CPU, never more actors than blocks of work, and
at least two blocks per actor where the job has the texts."""

from __future__ import annotations

from explain.corpus.engine_ray import plan_ray


def test_default_is_one_actor_per_cpu_with_two_blocks_each():
    plan = plan_ray(texts=100, parts=2, cpus=2, node_cpus=2)
    assert (plan.actors, plan.cpus_per_actor, plan.threads, plan.blocks) == (2, 1.0, 1, 4)


def test_one_actor_holds_the_cpus_and_runs_a_thread_on_each():
    plan = plan_ray(texts=50, parts=1, cpus=2, node_cpus=2, actors=1)
    assert (plan.actors, plan.cpus_per_actor, plan.threads, plan.blocks) == (1, 2.0, 2, 2)


def test_no_actor_without_work_and_no_actor_bigger_than_a_node():
    assert plan_ray(texts=1, parts=1, cpus=8, node_cpus=8).actors == 1
    assert plan_ray(texts=3, parts=1, cpus=8, node_cpus=8).blocks == 3
    many = plan_ray(texts=10_000, parts=157, cpus=24, node_cpus=8, actors=2)
    assert (many.blocks, many.cpus_per_actor, many.threads) == (157, 8.0, 8)
    crowded = plan_ray(texts=100, parts=2, cpus=2, node_cpus=2, actors=4)
    assert (crowded.actors, crowded.cpus_per_actor, crowded.threads) == (4, 0.5, 1)
