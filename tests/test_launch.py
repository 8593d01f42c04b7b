"""MLflow project parameters reach Hydra as the overrides the user wrote."""
import pytest

from bigcat_ml.cli.launch import split_overrides


@pytest.mark.parametrize(
    "text,words",
    [
        ("model=resnet50 force=true", ["model=resnet50", "force=true"]),
        ("compare.filter_tag='bigcat.model=resnet50'", ["compare.filter_tag='bigcat.model=resnet50'"]),
        ("classes.names=[Tiger,'Jaguar (Animal)'] -m model=a,b",
         ["classes.names=[Tiger,'Jaguar (Animal)']", "-m", "model=a,b"]),
        ("  data.sample.images_per_subset={train: 4, test: 2}  ", ["data.sample.images_per_subset={train: 4, test: 2}"]),
        ("", []),
    ],
)
def test_overrides_split_like_a_hydra_command_line(text, words):
    assert split_overrides(text) == words


def test_unbalanced_quotes_are_an_error_naming_the_text():
    with pytest.raises(ValueError, match="unbalanced"):
        split_overrides("classes.names=[Tiger")
