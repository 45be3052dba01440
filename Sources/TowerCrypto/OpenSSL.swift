internal import COpenSSL

// The only file that talks to libcrypto. Every other file of TowerCrypto calls these functions
// with Swift values; buffers are borrowed for the duration of one call.

enum OpenSSL {
    static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        // RAND_bytes fails only when the kernel's entropy source is unusable: nothing safe remains.
        precondition(ok == 1, "OpenSSL RAND_bytes failed: the system random source is unavailable")
        return out
    }

    static func digest(_ name: String, _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_get_digestbyname(name), nil)
            }
        }
        precondition(ok == 1, "OpenSSL EVP_Digest(\(name)) failed")
        return Array(out.prefix(Int(length)))
    }

    static func hmac(_ name: String, key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(EVP_get_digestbyname(name), k.baseAddress, Int32(k.count), d.baseAddress, d.count, o.baseAddress, &length)
                }
            }
        }
        precondition(result != nil, "OpenSSL HMAC(\(name)) failed")
        return Array(out.prefix(Int(length)))
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 }
        }
    }

    static func scrypt(password: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, length: Int) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        // Memory needed is 128 * r * (n + p + 2) bytes; allow exactly that plus slack.
        let maxMemory = 128 * r * (n + p + 2) + 1024 * 1024
        let ok = password.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    pw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(pw.count, 1)) { pwc in
                        EVP_PBE_scrypt(pwc, pw.count, s.baseAddress, s.count, n, r, p, maxMemory, o.baseAddress, length)
                    }
                }
            }
        }
        guard ok == 1 else { throw CryptoError(.invalidInput, "scrypt parameters rejected (N must be a power of two > 1)") }
        return out
    }

    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    pw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(pw.count, 1)) { pwc in
                        PKCS5_PBKDF2_HMAC(
                            pwc, Int32(pw.count), s.baseAddress, Int32(s.count), Int32(iterations), EVP_sha256(), Int32(length),
                            o.baseAddress)
                    }
                }
            }
        }
        guard ok == 1 else { throw CryptoError(.library, "PBKDF2 failed") }
        return out
    }

    /// AES-256-GCM encryption: ciphertext and 16-byte tag.
    static func aes256GCMSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) throws(CryptoError) -> (
        ciphertext: [UInt8], tag: [UInt8]
    ) {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError(.library, "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: 16)
        var length: Int32 = 0
        var total = 0
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonce.count), nil) == 1,
            EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw CryptoError(.library, "AES-256-GCM init failed") }
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1 else {
                throw CryptoError(.library, "AES-256-GCM AAD failed")
            }
        }
        let updated = ciphertext.withUnsafeMutableBufferPointer { out in
            plaintext.withUnsafeBufferPointer { input in
                EVP_EncryptUpdate(ctx, out.baseAddress, &length, input.baseAddress ?? UnsafePointer(out.baseAddress!), Int32(input.count))
            }
        }
        guard updated == 1 else { throw CryptoError(.library, "AES-256-GCM encrypt failed") }
        total = Int(length)
        let finished = ciphertext.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard finished == 1 else { throw CryptoError(.library, "AES-256-GCM final failed") }
        total += Int(length)
        guard tag.withUnsafeMutableBufferPointer({ EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, $0.baseAddress) }) == 1 else {
            throw CryptoError(.library, "AES-256-GCM tag failed")
        }
        return (Array(ciphertext.prefix(total)), tag)
    }

    static func aes256GCMOpen(key: [UInt8], nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], aad: [UInt8]) throws(CryptoError) -> [UInt8]
    {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError(.library, "EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        var total = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonce.count), nil) == 1,
            EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1
        else { throw CryptoError(.library, "AES-256-GCM init failed") }
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1 else {
                throw CryptoError(.library, "AES-256-GCM AAD failed")
            }
        }
        let updated = plaintext.withUnsafeMutableBufferPointer { out in
            ciphertext.withUnsafeBufferPointer { input in
                EVP_DecryptUpdate(ctx, out.baseAddress, &length, input.baseAddress ?? UnsafePointer(out.baseAddress!), Int32(input.count))
            }
        }
        guard updated == 1 else { throw CryptoError(.library, "AES-256-GCM decrypt failed") }
        total = Int(length)
        var tagCopy = tag
        guard tagCopy.withUnsafeMutableBufferPointer({ EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, $0.baseAddress) }) == 1 else {
            throw CryptoError(.invalidInput, "AES-256-GCM tag must be 16 bytes")
        }
        let finished = plaintext.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard finished == 1 else {
            throw CryptoError(.authenticationFailed, "the ciphertext did not authenticate: wrong key or altered data")
        }
        total += Int(length)
        return Array(plaintext.prefix(total))
    }
}
