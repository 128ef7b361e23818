from auditdm.world.oracle import answer, skill_of
from auditdm.world.parse import parse_question
from auditdm.world.scene import Arrow, Clock, Scene, Shape, Sign

SCENE = Scene(
    items={
        "top left": Shape("circle", "red", "large", "striped"),
        "top middle": Shape("circle", "blue", "small"),
        "top right": Clock(11, 30),
        "center": Shape("star", "yellow", "tiny"),
        "middle right": Sign(7),
        "bottom left": Arrow("left", "green"),
        "bottom right": Shape("square", "green", "small", "dotted"),
    },
    time_of_day="night", weather="snowy",
)  # fmt: skip


def ask(text: str, scene: Scene = SCENE):
    return answer(parse_question(text), scene)


def test_attribute_questions() -> None:
    assert ask("what color is the striped circle").answer == "red"
    assert ask("what shape is the dotted object").answer == "square"
    assert ask("what pattern is on the blue circle").answer == "plain"
    assert ask("what time does the clock show").answer == "11:30"
    assert ask("what number is on the sign").answer == "7"
    assert ask("which way does the arrow point").answer == "left"
    assert ask("what is the weather").answer == "snowy"
    assert ask("is it day or night").answer == "night"


def test_counting_existence_and_comparisons() -> None:
    assert ask("how many circles are there").answer == "2"
    assert ask("how many green objects are there").answer == "1"  # the arrow is not an object
    assert ask("how many clocks are there").answer == "1"
    assert ask("how many purple objects are there").answer == "0"
    assert ask("is there a green arrow").answer == "yes"
    assert ask("is there a red star").answer == "no"
    assert ask("is the red circle bigger than the blue circle").answer == "yes"
    assert ask("is the star smaller than the square").answer == "yes"
    assert ask("is the square bigger than the square").status == "unanswerable"
    assert ask("is the clock right of the arrow").answer == "yes"
    assert ask("is the clock below the star").answer == "no"


def test_relations_name_the_neighbour_or_nothing() -> None:
    assert ask("what is directly right of the red circle").answer == "circle"
    assert ask("what is directly below the clock").answer == "sign"
    assert ask("what is directly above the red circle").answer == "nothing"  # off the grid
    assert ask("what is directly below the star").answer == "nothing"


def test_ambiguous_and_absent_referents() -> None:
    ambiguous = ask("what color is the circle")
    assert ambiguous.answer is None and ambiguous.status == "ambiguous"
    absent = ask("what color is the triangle")
    assert absent.answer is None and absent.status == "unanswerable"
    assert ask("what color is the clock").status == "unanswerable"  # clocks have no colour
    assert ask("is the triangle left of the star").status == "unanswerable"


def test_skill_of_follows_form_size_and_clutter() -> None:
    assert skill_of(parse_question("what color is the striped circle"), SCENE) == "color"
    assert skill_of(parse_question("what color is the star"), SCENE) == "small_object"
    cluttered = Scene(items=SCENE.items, clutter="heavy")
    assert skill_of(parse_question("what color is the striped circle"), cluttered) == "distraction"
    assert skill_of(parse_question("is there a red star"), SCENE) == "hallucination"
