"""Label Studio's own parsers on a Labelstudio pull: run by hand, outside the test suite.

label-studio-sdk 2.1.2 pins opencv-python-headless 4.12, which needs numpy < 2.3, and the
project's environment has numpy 2.4: it cannot share the venv. So it runs in its own:

    python3 -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio-sdk
    pytest tests/corpus/test_labelstudio.py -k round_trip --basetemp=/tmp/bt
    /tmp/ls/bin/python tests/corpus/labelstudio_sdk_check.py /tmp/bt/test_round_trip_keeps_every_tu0

It validates the labeling config, every task, prediction and (submitted) annotation with
`LabelInterface`, shows that a wrong label or control name is refused, and converts the
annotated export with the SDK's `Converter` to JSON-MIN, counting the regions it reads.
"""
import json, sys, tempfile, os
from pathlib import Path
from label_studio_sdk.label_interface import LabelInterface
from label_studio_sdk.converter import Converter

base = Path(sys.argv[1])
config = (base / "pull/labelstudio/config.xml").read_text()
tasks = json.loads((base / "pull/labelstudio/tasks.json").read_text())
annotated = json.loads((base / "annotated.json").read_text())
li = LabelInterface(config)
print("controls:", [c.name for c in li.controls], "objects:", [o.name for o in li.objects])
print("labels:", li.get_all_labels())
print("validate_task (data only; the sdk 2.1.2 validate_task with predictions calls validate_prediction() without its argument):", [li.validate_task({"data": t["data"]}) for t in tasks])
print("validate_prediction:", [li.validate_prediction(t["predictions"][0]) for t in tasks])
print("validate_annotation:", [li.validate_annotation(t["annotations"][0]) for t in annotated])
out = tempfile.mkdtemp()
conv = Converter(config=config, project_dir=out, download_resources=False)
print("formats:", conv.supported_formats if hasattr(conv, "supported_formats") else "")
inp = Path(out) / "export.json"; inp.write_text(json.dumps(annotated))
conv.convert_to_json_min(str(inp), out, is_dir=False)
mini = json.loads((Path(out) / "result.json").read_text())
regions = sum(len(m.get("speaker", [])) for m in mini)
texts = sum(len(m.get("transcription", [])) for m in mini)
print("json_min tasks:", len(mini), "speaker regions:", regions, "transcriptions:", texts)
print("first:", json.dumps(mini[0]["speaker"][0]), json.dumps(mini[0]["transcription"][0])[:200])
turns = sum(1 for t in annotated for r in t["annotations"][0]["result"] if r["type"] == "labels")
print("turns in export:", turns)
bad = json.loads(json.dumps(tasks[0]["predictions"][0]))
bad["result"][0]["value"]["labels"] = ["nobody"]
print("a prediction with an unknown speaker label validates:", li.validate_prediction(bad))
bad2 = json.loads(json.dumps(tasks[0]["predictions"][0])); bad2["result"][1]["from_name"] = "nope"
print("a prediction naming an unknown control validates:", li.validate_prediction(bad2))
