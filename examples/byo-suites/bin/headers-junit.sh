#!/bin/sh
# A tiny JUnit producer (any tool that writes JUnit XML fits the `junit` kind): checks response
# headers of one URL with curl and writes $SMOKEGATE_RESULTS_DIR/junit.xml.
url=$1
headers=$(curl -sS -D - -o /dev/null "$url") || exit 2
case_for() {  # name, header regex
  if printf '%s' "$headers" | grep -qi "$2"; then
    printf '<testcase classname="headers" name="%s"/>\n' "$1"
  else
    printf '<testcase classname="headers" name="%s"><failure message="no header matching %s"/></testcase>\n' "$1" "$2"
  fi
}
{
  echo '<testsuite name="headers">'
  case_for "json content type" '^content-type: application/json'
  case_for "version header" '^x-demo-version: '
  echo '</testsuite>'
} > "$SMOKEGATE_RESULTS_DIR/junit.xml"
