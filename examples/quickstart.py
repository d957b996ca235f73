"""The Python API on the bundled demo data: fit, evaluate, predict, save, load."""
from pathlib import Path
import tempfile

from modalfuse import MultimodalModel
from modalfuse.datasets import make_demo_data

folder = Path(tempfile.mkdtemp())
data = make_demo_data(folder / "data")
model = MultimodalModel(data.modalities, target=data.target, model={"fusion": {"name": "concat"}},
                        train={"max_epochs": 5, "progress": False})
model.fit(data.train, run_dir=folder / "run")
print(model.evaluate(data.test))
print(model.predict_frame(data.test.head()))
model.save(folder / "model")
print(MultimodalModel.load(folder / "model").predict(data.test.head()))
