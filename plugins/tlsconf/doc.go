// Package tlsconf is the one `tls:` block shared by every plugin (and
// command) that dials out: KafkaInput/KafkaOutput, MysqlbinlogInput,
// ESOutput, dbc peek.
//
// Shape (YAML, under the plugin's `tls` key):
//
//	tls:
//	  enabled: true            # off unless set (or implied by another key)
//	  mode: verify-full        # verify-full (default) | verify-ca | required | preferred
//	  ca_file: /etc/dbus/ca.pem        # PEM bundle; default: the system roots
//	  cert_file: /etc/dbus/client.pem  # client certificate (mutual TLS), with key_file
//	  key_file: /etc/dbus/client.key
//	  server_name: kafka.internal      # name checked against the certificate; default: the dialled host
//	  insecure_skip_verify: false      # same as mode: required (encrypt, verify nothing)
//	  min_version: "1.2"               # 1.2 | 1.3
//
// Modes: verify-full checks the chain and the host name; verify-ca checks
// the chain only (for servers whose certificate names no usable host, as
// MySQL's auto-generated ones); required encrypts without verifying
// (insecure: a man in the middle can read everything); preferred tries TLS
// and falls back to plaintext, verifying nothing (as MySQL's
// ssl-mode=PREFERRED) — only plugins whose protocol negotiates TLS (MySQL)
// accept it, others refuse it at config time.
//
// Contract:
//  1. Field() is the spec entry; FromConf decodes and validates it (files
//     readable, certificate and key a pair, known mode) with errors that
//     name the plugin, file and line.
//  2. Build returns a fresh *tls.Config per call (nil when TLS is off);
//     callers may modify the returned value.
//  3. Nothing here logs; no key material or file content appears in an
//     error (only paths).
//
// Safe for concurrent use: Config is a value.
package tlsconf
