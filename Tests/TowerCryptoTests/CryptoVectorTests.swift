import Testing
import TowerCrypto

func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

@Suite("OpenSSL primitives against published test vectors")
struct CryptoVectorTests {
    @Test func sha256() {
        #expect(Crypto.hex(Crypto.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Crypto.hex(Crypto.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Crypto.hex(Crypto.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Crypto.hex(Crypto.sha256(String(repeating: "a", count: 1000))).hasPrefix("41edece42d63e8d9bf515a9ba6932e1c20cbc9f5"))
    }

    @Test func hmacRFC4231Case2() {
        let mac = Crypto.hmacSHA256(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(Crypto.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hmacSHA1RFC2202Case2() {
        let mac = Crypto.hmacSHA1(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(Crypto.hex(mac) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    }

    /// RFC 6238 appendix B (SHA-1, 8 digits, the 20-byte ASCII secret "12345678901234567890").
    @Test func totpRFC6238() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8), digits: 8)
        #expect(totp.code(at: 59) == "94287082")
        #expect(totp.code(at: 1_111_111_109) == "07081804")
        #expect(totp.code(at: 1_234_567_890) == "89005924")
        #expect(totp.code(at: 20_000_000_000) == "65353130")
    }

    @Test func totpVerifiesWithinTheWindowOnly() {
        let totp = TOTP(secret: TOTP.generateSecret())
        let now: Int64 = 1_795_684_500
        #expect(totp.verify(totp.code(at: now - 30), at: now) == now / 30 - 1)
        #expect(totp.verify(totp.code(at: now - 90), at: now) == nil)
        #expect(totp.verify("12345", at: now) == nil)
        #expect(totp.verify("abcdef", at: now) == nil)
    }

    @Test func base32RoundTrip() {
        #expect(Base32.encode(Array("foobar".utf8)) == "MZXW6YTBOI")
        #expect(Base32.decode("MZXW6YTBOI") == Array("foobar".utf8))
        #expect(Base32.decode("mzxw6ytboi======") == Array("foobar".utf8))
        #expect(Base32.decode("MZ1") == nil)
    }

    @Test func passwordHashesVerifyAndResistTampering() throws {
        let hasher = PasswordHasher(cost: .testing)
        let encoded = try hasher.hash("correct horse battery staple")
        #expect(encoded.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        #expect(hasher.verify("correct horse battery staple", against: encoded))
        #expect(!hasher.verify("correct horse battery stapl", against: encoded))
        #expect(!hasher.verify("x", against: "$scrypt$ln=10,r=8,p=1$AAAA$BBBB"))
        #expect(!hasher.verify("x", against: "plaintext"))
        #expect(try hasher.hash("same") != hasher.hash("same"))  // salted
        #expect(PasswordHasher(cost: .owasp).needsRehash(encoded))
        #expect(!hasher.needsRehash(encoded))
    }

    /// RFC 7914 section 11 (PBKDF2-HMAC-SHA256, "passwd", "salt", 1 iteration).
    @Test func pbkdf2RFC7914Vector() throws {
        let derived = try PBKDF2.sha256(password: "passwd", salt: Array("salt".utf8), iterations: 1, length: 64)
        #expect(Crypto.hex(derived).hasPrefix("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"))
    }

    /// NIST GCM test case 16 (AES-256, 96-bit IV, with AAD).
    @Test func aesGCMNISTVector() throws {
        let key = hexBytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let iv = hexBytes("cafebabefacedbaddecaf888")
        let plaintext = hexBytes(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = hexBytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let (ciphertext, tag) = try SealedBox.seal(key: key, nonce: iv, plaintext: plaintext, associatedData: aad)
        #expect(
            Crypto.hex(ciphertext)
                == "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        )
        #expect(Crypto.hex(tag) == "76fc6ece0f4e1768cddf8853bb2d551b")
    }

    @Test func sealedBoxAuthenticatesPlaceAndContent() throws {
        let box = try SealedBox(key: Crypto.randomBytes(32))
        let secret = Array("twilio auth token".utf8)
        let sealed = try box.seal(secret, associatedData: Array("org-a/conn-1".utf8))
        #expect(try box.open(sealed, associatedData: Array("org-a/conn-1".utf8)) == secret)
        #expect(throws: CryptoError.self) { try box.open(sealed, associatedData: Array("org-b/conn-1".utf8)) }
        var altered = sealed
        altered[20] ^= 1
        #expect(throws: CryptoError.self) { try box.open(altered, associatedData: Array("org-a/conn-1".utf8)) }
        #expect(throws: CryptoError.self) { try SealedBox(key: [1, 2, 3]) }
        #expect(try box.seal([]).count == 1 + 12 + 16)
    }

    @Test func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2], [1, 2, 3]))
    }
}
