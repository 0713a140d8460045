"""The repository's labeling configuration against the export parser
(ilf_kedro.label_studio.schema)."""

import pytest

from ilf_kedro import label_studio
from tests.conftest import PROJECT_ROOT

CONFIG = (PROJECT_ROOT / "conf/base/label_studio/labeling_config.xml").read_text()


def test_the_repository_labeling_config_matches_the_parser():
    label_studio.check_labeling_config(CONFIG)
    with pytest.raises(ValueError, match="no control named 'refinement_passes'"):
        label_studio.check_labeling_config(CONFIG.replace('"refinement_passes"', '"ok"'))
    with pytest.raises(ValueError, match=r"task field\(s\) \['code'\]"):
        label_studio.check_labeling_config(CONFIG.replace('"$program"', '"$code"'))
