"""CDK app: every Swordfish stack for the environment chosen with `-c env=dev|prod` (default dev)."""

from aws_cdk import App

from stacks.app_builder import build_app

app = App()
build_app(app)
app.synth()
