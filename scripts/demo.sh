#!/usr/bin/env bash
# Install postkit into .venv and run the demo study on the embedded corpus (corpora/demo/).
source "$(dirname "$0")/_venv.sh"
install_postkit "[dense]"

# A pseudonym key kept outside the run folder and reused between demo runs, so user
# pseudonyms stay the same each time (a real study keeps its key somewhere private).
if [ ! -f .postkit-demo.key ]; then
    (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' > .postkit-demo.key)
fi
export POSTKIT_PSEUDONYM_KEY="$(cat .postkit-demo.key)"
# The demo's own key folder (the steward's signing key lives there), and the public key a
# steward would send to ethics reviewers; the audit log is verified against it below.
export POSTKIT_KEY_DIR="$PWD/.postkit-demo-keys"
.venv/bin/postkit keys public -o .postkit-demo-steward.pub

.venv/bin/postkit run corpora/demo/study.toml
echo
.venv/bin/postkit audit verify corpora/demo/output/consent/audit.jsonl \
    --output corpora/demo/output/consent/posts.parquet --public-key .postkit-demo-steward.pub
echo
.venv/bin/postkit verify corpora/demo/output --public-key .postkit-demo-steward.pub
