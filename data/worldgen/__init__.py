"""Building blocks of the deterministic sample world written by `data/generate_world.py`.

pdf: a tiny PDF writer; html: landing pages of real platforms; catalog:
idents, hashes and URL lists of file entities; archive: WARC and index
writing; world: the shared state scenarios add to; success / failure /
population: the scenarios themselves.
"""
