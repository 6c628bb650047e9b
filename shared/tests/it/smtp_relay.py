"""An SMTP relay as mail providers run one, for the mail test: STARTTLS required, then AUTH.

Usage: python smtp_relay.py DIR PORT USER PASSWORD
Writes DIR/ca.pem (the CA that signed the relay's certificate, for 127.0.0.1) and delivers each
message into the maildir DIR/mail; prints "ready" once it listens on 127.0.0.1:PORT.
"""

import datetime
import ipaddress
import ssl
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

directory, port, user, password = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]


def certificate(subject, key, issuer, issuer_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = certificate("test relay CA", ca_key, "test relay CA", ca_key, True)
key = ec.generate_private_key(ec.SECP256R1())
server = certificate("127.0.0.1", key, "test relay CA", ca_key, False)
pem = serialization.Encoding.PEM
(directory / "ca.pem").write_bytes(ca.public_bytes(pem))
(directory / "server.pem").write_bytes(server.public_bytes(pem))
(directory / "server.key").write_bytes(
    key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(directory / "server.pem", directory / "server.key")


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        user.encode(),
        password.encode(),
    )
    # Not handled: aiosmtpd answers 535 itself.
    return AuthResult(success=ok, handled=False)


controller = Controller(
    Mailbox(directory / "mail"),
    hostname="127.0.0.1",
    port=port,
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
