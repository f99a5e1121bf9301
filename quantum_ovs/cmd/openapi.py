"""quantum-ovs-openapi: write the OpenAPI documents of the API this code
serves (``make openapi``): doc/api/networking-v2.json (v2.0, with every
extension enabled by the default configuration) and
doc/api/networking-v1.json (the Essex v1.0/v1.1 API).

The v2.0 document is made from an app built the way the server builds it
(on a throw-away SQLite database), so it describes the routes and the
attribute maps the server runs on.
"""

import argparse
import json
import os
import sys
import tempfile

from quantum_ovs import config, service
from quantum_ovs.api import openapi

V2 = "networking-v2.json"
V1 = "networking-v1.json"


def render(doc):
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def app_document(conf=None):
    """The v2.0 document of an app built from ``conf`` (default: the
    default configuration)."""
    with tempfile.TemporaryDirectory() as d:
        if conf is None:
            conf = config.make_conf([])
        conf.set_override("connection", f"sqlite:///{d}/openapi.sqlite", group="database")
        db, plugin, app = service.build(conf, migrate=True)
        try:
            api = openapi.find_api(app)
            return openapi.document(api.schema, openapi.routes_of(api))
        finally:
            db.dispose()


def documents():
    """{file name: text} of both documents."""
    return {V2: render(app_document()), V1: render(openapi.essex_document())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output-dir", default="doc/api")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a document in the directory is not current")
    args = p.parse_args(argv)
    stale = []
    for name, text in documents().items():
        path = os.path.join(args.output_dir, name)
        if args.check:
            try:
                with open(path) as f:
                    if f.read() != text:
                        stale.append(path)
            except FileNotFoundError:
                stale.append(path)
            continue
        os.makedirs(args.output_dir, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}")
    if stale:
        print("stale: " + ", ".join(stale) + " (run `make openapi`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
