from setuptools import setup

# pyspark and delta-spark are a released pair (Delta 4.0.x is built for Spark 4.0.x, the
# Spark of Databricks Runtime 17.3 LTS). The rest are pinned to the versions the tests ran on,
# so a night's model is reproducible; PyYAML reads conf/*.yaml; matplotlib and seaborn draw the
# segment report's charts.
INSTALL_REQUIRES = [
    "pyspark==4.0.1",
    "delta-spark==4.0.1",
    "pandas==2.3.3",
    "numpy==2.4.6",
    "scikit-learn==1.9.1",
    "pyarrow==26.0.1",
    "PyYAML==6.0.4",
    "matplotlib==3.11.2",
    "seaborn==0.13.2",
]

# Playwright drives the system Chromium (`apt-get install chromium`) in the report's browser
# test; it downloads no browser of its own.
TEST_REQUIRES = ["pytest==9.2.0", "playwright==1.65.2"]

setup(
    name="segmentation",
    version="0.1.0",
    description="Nightly behavioural segmentation of credit-card customers into a Delta table",
    python_requires=">=3.10",
    packages=["segmentation", "segmentation.conf", "jobs"],
    package_dir={"segmentation.conf": "conf"},
    package_data={"segmentation.conf": ["*.yaml", "*.properties"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    entry_points={
        "console_scripts": [
            "segmentation-features=jobs.features:main",
            "segmentation-train=jobs.train:main",
            "segmentation-score=jobs.score:main",
            "segmentation-nightly=jobs.nightly:main",
            "segmentation-generate=jobs.generate:main",
            "segmentation-report=jobs.report:main",
        ]
    },
)
