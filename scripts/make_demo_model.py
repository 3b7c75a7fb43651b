"""Train the demo model (iris, LogisticRegression) and save it in MLflow's format with our save API.

    python scripts/make_demo_model.py OUTPUT_DIR
"""
import shutil
import sys

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from flavors.signature import infer_signature
from flavors.sklearn import save_model


def main(output_dir: str) -> None:
    iris = load_iris(as_frame=True)
    features = iris.data.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(features, iris.target)
    example = features.head(3)
    shutil.rmtree(output_dir, ignore_errors=True)
    save_model(
        model,
        output_dir,
        serialization_format="skops",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
    )
    print(f"saved demo model to {output_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-model")
