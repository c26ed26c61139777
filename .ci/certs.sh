#!/usr/bin/env bash
# Test certificates for the TLS tests (Kafka, MariaDB, ES), made with
# openssl (Debian's).
#
#   .ci/certs.sh DIR
#
# writes into DIR (created if needed):
#   ca.pem                    a self-signed test CA (also ca.key)
#   server.pem, server.key    signed by the CA, for localhost and 127.0.0.1
#   client.pem, client.key    signed by the CA, CN=dbus-client (mutual TLS)
#   expired.pem, expired.key  signed by the CA for localhost/127.0.0.1, expired
#   wronghost.pem, wronghost.key  signed by the CA for wrong.example only
#   other-ca.pem              an unrelated CA (a client trusting it must refuse the server)
#
# Idempotent: when DIR/ca.pem exists nothing is regenerated (servers that
# already use the files keep working). Keys are P-256, readable by the
# owner only.
set -euo pipefail
dir=${1:?usage: $0 DIR}
command -v openssl >/dev/null 2>&1 || { echo "certs.sh: openssl not found (apt-get install -y openssl)" >&2; exit 1; }
mkdir -p "$dir"
if [ -s "$dir/ca.pem" ] && [ -s "$dir/server.pem" ] && [ -s "$dir/wronghost.pem" ] && [ -s "$dir/other-ca.pem" ]; then
	echo "certs.sh: certificates already in $dir"
	exit 0
fi
umask 077
cd "$dir"

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# CA
key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=dbus test CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out ca.pem 2>/dev/null
key other-ca.key
openssl req -x509 -new -key other-ca.key -sha256 -days 3650 -subj "/CN=dbus other test CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out other-ca.pem 2>/dev/null

# sign NAME CN SAN DAYS_SPEC EKU
#   DAYS_SPEC: "-days N", or "expired" for a certificate valid in 2020 only
sign() {
	local name=$1 cn=$2 san=$3 days=$4 eku=$5
	key "$name.key"
	openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -n "$san" ] && echo "subjectAltName=$san"
	} >"$name.ext"
	if [ "$days" = expired ]; then
		# openssl x509 has no -not_before/-not_after before 3.4: use ca.
		mkdir -p ca.db
		: >ca.db/index.txt
		[ -f ca.db/serial ] || echo 1000 >ca.db/serial
		cat >ca.db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
CNF
		openssl ca -batch -config ca.db/ca.cnf -cert ca.pem -keyfile ca.key -in "$name.csr" \
			-startdate 20200101000000Z -enddate 20200201000000Z -extfile "$name.ext" \
			-notext -out "$name.pem" 2>/dev/null
	else
		openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial $days -sha256 \
			-extfile "$name.ext" -out "$name.pem" 2>/dev/null
	fi
	rm -f "$name.csr" "$name.ext"
}

sign server localhost "DNS:localhost,IP:127.0.0.1" "-days 3650" serverAuth
sign client dbus-client "" "-days 3650" clientAuth
sign expired localhost "DNS:localhost,IP:127.0.0.1" expired serverAuth
sign wronghost wrong.example "DNS:wrong.example" "-days 3650" serverAuth
rm -rf ca.db ca.srl
# Certificates are public; servers running as other users read their key
# through the directory they are given.
chmod 644 ./*.pem
echo "certs.sh: certificates written to $dir"
