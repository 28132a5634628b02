# helm test: every role's /readyz answers 200, and the API serves the snippet.
# Runs in busybox's sh (tests.image); scripts/helm-test runs it against a live
# processor with Debian's busybox. No wget -T: Debian's busybox 1.35 crashes on
# it; the pod's activeDeadlineSeconds bounds the whole run instead.
set -eu
for url in $PRECHAT_READYZ_URLS; do
  echo "GET $url"
  wget -q -O - "$url"
  echo
done
if [ -n "${PRECHAT_SNIPPET_URL:-}" ]; then
  echo "GET $PRECHAT_SNIPPET_URL"
  snippet=$(wget -q -O - "$PRECHAT_SNIPPET_URL")
  case "$snippet" in
    *'"X-Prechat-Token"'*) echo "the snippet (${#snippet} bytes) presents X-Prechat-Token" ;;
    *) echo "that is not the Prechat snippet" >&2; exit 1 ;;
  esac
fi
echo "test-success"
