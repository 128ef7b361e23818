"""The embedded world: a procedural visual domain with an exact oracle, and its model zoo.

- ``scene``: what an image contains; ``render``: scene -> pixels (and back, via PNG text)
- ``grammar`` / ``parse``: the English subset of questions, captions and edit commands
- ``oracle``: exact answers, ambiguity and the skill a question tests
- ``sampling`` / ``skills``: random scenes, sentences and labelled examples per skill
- ``edit`` / ``synth``: the world's image editor E and generator G
- ``zoo``: small LLaVA-style models trained here from scratch
"""
