#!/bin/bash
# One SMTP session on stdin/stdout (RFC 5321's minimum: HELO/EHLO, MAIL, RCPT, DATA, RSET,
# NOOP, QUIT). A message is written to a temporary file and renamed into /sink before the
# 250, so the test never reads half a message.
set -u
reply() { printf '%s\r\n' "$1"; }
reply "220 sink ESMTP"
while IFS= read -r line; do
  line="${line%$'\r'}"
  case "${line^^}" in
    EHLO*|HELO*) reply "250 sink" ;;
    MAIL\ FROM:*) from="${line:10}"; reply "250 ok" ;;
    RCPT\ TO:*) reply "250 ok" ;;
    DATA)
      reply "354 go ahead"
      tmp="$(mktemp /sink/.incoming.XXXXXX)"
      printf 'X-Sink-From: %s\r\n' "${from:-}" > "$tmp"
      while IFS= read -r data; do
        data="${data%$'\r'}"
        [ "$data" = "." ] && break
        [ "${data:0:1}" = "." ] && data="${data:1}"
        printf '%s\r\n' "$data" >> "$tmp"
      done
      mv "$tmp" "/sink/$(date +%s%N)-$$.eml"
      reply "250 ok stored" ;;
    RSET|NOOP*) reply "250 ok" ;;
    QUIT) reply "221 bye"; exit 0 ;;
    *) reply "502 not implemented" ;;
  esac
done
