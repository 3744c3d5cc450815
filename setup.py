"""Installs tfinverse: generative-model inverse problems in TensorFlow 2 / Keras 3."""

from pathlib import Path

from setuptools import find_packages, setup

README = Path(__file__).with_name("README.md")

# Ranges known to resolve together on Python 3.11 (tensorflow 2.21 wants numpy 2.x).
CORE = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.10,<4",
    # tf.summary needs it to write event files; tensorflow 2.21 no longer depends on it.
    "tensorboard>=2.21,<2.22",
    "numpy>=2.0,<2.5",
    "scipy>=1.13,<2",
    "opencv-python-headless>=4.10,<6",
    "tqdm>=4.66",
]
EXTRAS = {
    "data": [
        "tensorflow-datasets>=4.9.7,<4.10",
        "importlib_resources>=6",
        "mlxtend>=0.23,<1",
        "scikit-image>=0.24,<0.27",
        "scikit-learn>=1.5",
        "captcha>=0.6,<0.8",
    ],
    "audio": [
        "librosa>=0.11,<0.12",
        "soundfile>=0.12",
        "mir_eval>=0.7,<0.9",
    ],
    "plot": ["matplotlib>=3.8"],
    # BM3D is free for non-commercial use only; see the bm3d package's licence.
    "bm3d": ["bm3d>=4.0,<5"],
    "test": ["pytest>=8", "pytest-xdist>=3.5"],
    # Only benchmarks/bench_vs_torch.py uses PyTorch (fused CPU Adam needs 2.4); tfinverse never imports it.
    "bench": ["torch>=2.4"],
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name not in ("bm3d", "bench") for req in reqs})

setup(
    name="tfinverse",
    version="0.1.0",
    description="Inverse problems in imaging and audio with generative models, in TensorFlow 2 / Keras 3",
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["tfinverse", "tfinverse.*"]),
    package_data={"tfinverse": ["assets/**/*"]},
    include_package_data=True,
    install_requires=CORE,
    extras_require=EXTRAS,
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
