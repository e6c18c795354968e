"""Benchmarks for the escalator (DESIGN.md §9).

Every benchmark measures its subject and a baseline in the same run and reports the ratio
subject / baseline, so results compare across machines and loads. Nothing here asserts an
absolute time. Run `python -m bench` (all) or `python -m bench calendar|machine|workflow`.
"""
