// One TLS connection over a non-blocking socket: handshake, read and write that never wait.
import COpenSSL
import Glibc

/// An `SSL` object bound to a socket. Confined, like the session that owns it, to one event loop.
///
/// Non-blocking OpenSSL: every call may stop with "want read" or "want write", which here means
/// "would block" plus which readiness to wait for (`readWantsWrite`): a read can need the socket to be
/// writable (a TLS 1.3 key update to answer) and the loop must then wake on writability to read.
/// OpenSSL may also hold decrypted bytes the socket no longer signals (`hasBufferedBytes`); the
/// owner drains them itself after each read instead of waiting for an epoll wakeup that will not come.
public final class TLSStream: @unchecked Sendable {
    let ssl: OpaquePointer
    /// Keeps the context alive as long as the connection (OpenSSL counts references too; this is for Swift).
    private let context: TLSContext
    /// The last read stopped because the socket must become writable first.
    public private(set) var readWantsWrite = false
    /// The last write stopped because the socket must become readable first.
    public private(set) var writeWantsRead = false

    public enum HandshakeProgress: Sendable, Equatable {
        case done
        case wantRead
        case wantWrite
    }

    init(context: TLSContext, socket: Socket) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw .fromQueue("SSL_new") }
        guard SSL_set_fd(ssl, socket.fd) == 1 else {
            SSL_free(ssl)
            throw .fromQueue("SSL_set_fd")
        }
        self.ssl = ssl
        self.context = context
    }

    deinit { SSL_free(ssl) }

    /// Advances the handshake as far as the socket allows.
    public func handshake() throws(TLSError) -> HandshakeProgress {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .done }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_SYSCALL:
            let err = errno
            throw TLSError("TLS handshake", reason: openSSLErrorText() ?? (err == 0 ? "the peer closed the connection" : String(cString: strerror(err))))
        default:
            throw TLSError("TLS handshake", reason: failureReason())
        }
    }

    /// Why the handshake failed: the certificate check's verdict when there is one, else OpenSSL's error.
    private func failureReason() -> String {
        let queued = openSSLErrorText() ?? "unknown OpenSSL error"
        let verdict = SSL_get_verify_result(ssl)
        if verdict != X509_V_OK, let text = X509_verify_cert_error_string(verdict) {
            return "\(queued) (\(String(cString: text)))"
        }
        return queued
    }

    /// Reads until `buffer` is full or the socket has nothing more. Errors come as `SocketError`
    /// so that callers handle a broken TLS stream as they handle a broken socket.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> ReadResult {
        readWantsWrite = false
        var total = 0
        while total < buffer.count {
            ERR_clear_error()
            var n = 0
            let rc = SSL_read_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &n)
            if rc == 1 {
                total += n
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ:
                return total > 0 ? .bytes(total) : .wouldBlock
            case SSL_ERROR_WANT_WRITE:
                readWantsWrite = true
                return total > 0 ? .bytes(total) : .wouldBlock
            case SSL_ERROR_ZERO_RETURN:
                return total > 0 ? .bytes(total) : .endOfFile
            case SSL_ERROR_SYSCALL:
                let err = errno
                if total > 0 { return .bytes(total) }
                if err == 0 { return .endOfFile }
                throw SocketError("tls read", errno: err)
            default:
                if total > 0 { return .bytes(total) }
                throw SocketError("tls read", errno: 0, detail: openSSLErrorText() ?? "TLS error")
            }
        }
        return .bytes(total)
    }

    /// Writes what the socket takes now; 0 when it would block. After a 0, the next call must offer
    /// the same bytes again (more may follow them): OpenSSL may already hold a record made of them.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        writeWantsRead = false
        var total = 0
        while total < buffer.count {
            ERR_clear_error()
            var n = 0
            let rc = SSL_write_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &n)
            if rc == 1 {
                total += n
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_WRITE:
                return total
            case SSL_ERROR_WANT_READ:
                writeWantsRead = true
                return total
            case SSL_ERROR_SYSCALL:
                let err = errno
                throw SocketError("tls write", errno: err == 0 ? EPIPE : err)
            default:
                throw SocketError("tls write", errno: 0, detail: openSSLErrorText() ?? "TLS error")
            }
        }
        return total
    }

    /// Decrypted (or received but not yet decrypted) bytes OpenSSL holds: readable without the socket.
    public var hasBufferedBytes: Bool { SSL_has_pending(ssl) == 1 }

    /// Sends close_notify if the socket takes it now; never waits (the socket is closed right after).
    public func shutdown() {
        ERR_clear_error()
        if SSL_is_init_finished(ssl) == 1 { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
    }

    /// Whether the peer presented a certificate (which the context then verified).
    public var hasPeerCertificate: Bool {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return false }
        X509_free(certificate)
        return true
    }

    /// The common name of the peer's certificate subject, when there is one.
    public var peerCommonName: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        let length = X509_NAME_get_text_by_NID(subject, NID_commonName, nil, 0)
        guard length >= 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(length) + 1)
        _ = X509_NAME_get_text_by_NID(subject, NID_commonName, &buffer, Int32(buffer.count))
        return cString(buffer)
    }

    /// The negotiated protocol, such as "TLSv1.3".
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }
}
