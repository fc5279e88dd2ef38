#include "edge/cloudsync/policy_message.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "edge/cloudsync/base64.h"
#include "edge/common/c_ptr.h"
#include "edge/common/files.h"
#include "edge/common/strings.h"

namespace edge::cloudsync {
namespace {

using Json = nlohmann::json;

using PkeyPtr = CPtr<EVP_PKEY, EVP_PKEY_free>;
using BioPtr = CPtr<BIO, BIO_free>;
using MdCtxPtr = CPtr<EVP_MD_CTX, EVP_MD_CTX_free>;

constexpr size_t kSignatureBytes = 64;
// A signature field longer than this is not an Ed25519 signature (88 characters).
constexpr size_t kMaxSignatureBase64Chars = 4096;
constexpr size_t kMaxKeyFileBytes = 16 * 1024;
constexpr size_t kMaxDetailBytes = 1024;

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

Result<std::string> ReadSmallFile(const std::string& path) {
  Result<std::string> text = ReadFile(path, kMaxKeyFileBytes);
  if (text.ok()) return text;
  if (text.status().code() == Status::Code::kFull) {
    return Status::Error(path + ": too large for a key file");
  }
  return Status::Error(path + ": " + text.error());
}

bool IsEd25519(EVP_PKEY* key) { return EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519; }

class OpenSslSigningKey final : public SigningKey {
 public:
  explicit OpenSslSigningKey(PkeyPtr key) : key_(std::move(key)) {}

  Result<std::string> Sign(std::string_view message) const override {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
      return Status::Error("sign: " + OpenSslError());
    }
    unsigned char sig[kSignatureBytes];
    size_t sig_len = sizeof sig;
    if (EVP_DigestSign(ctx.get(), sig, &sig_len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
      return Status::Error("sign: " + OpenSslError());
    }
    return Base64Encode(sig, sig_len);
  }

  std::string PublicKeyPem() const override {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) return {};
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
  }

 private:
  PkeyPtr key_;
};

class OpenSslVerifyKey final : public VerifyKey {
 public:
  explicit OpenSslVerifyKey(PkeyPtr key) : key_(std::move(key)) {}

  Status Verify(std::string_view message, std::string_view signature_b64) const override {
    const auto sig = Base64Decode(signature_b64, kMaxSignatureBase64Chars);
    if (!sig || sig->size() != kSignatureBytes) {
      return Status::Error("signature is not 64 bytes of base64");
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
      return Status::Error("verify: " + OpenSslError());
    }
    const int rc =
        EVP_DigestVerify(ctx.get(), sig->data(), sig->size(),
                         reinterpret_cast<const unsigned char*>(message.data()), message.size());
    ERR_clear_error();
    if (rc != 1) return Status::Error("signature does not match the policy public key");
    return Status::Ok();
  }

 private:
  PkeyPtr key_;
};

Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::Error(path + ": cannot create: " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      return Status::Error(path + ": write failed: " + err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status::Error(path + ": write failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

const Json* Field(const Json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

Result<std::string> StringField(const Json& j, const char* name, bool required, size_t max_bytes) {
  const Json* f = Field(j, name);
  if (f == nullptr || f->is_null()) {
    if (required) return Status::Error(std::string("missing \"") + name + "\"");
    return std::string();
  }
  if (!f->is_string()) return Status::Error(std::string("\"") + name + "\" must be a string");
  const auto& s = f->get_ref<const std::string&>();
  if (s.size() > max_bytes) return Status::Error(std::string("\"") + name + "\" is too long");
  return s;
}

Result<int64_t> VersionField(const Json& j) {
  const Json* f = Field(j, "version");
  if (f == nullptr) return Status::Error("missing \"version\"");
  if (!f->is_number_integer()) return Status::Error("\"version\" must be an integer");
  const int64_t v =
      f->is_number_unsigned() && f->get<uint64_t>() > INT64_MAX ? -1 : f->get<int64_t>();
  if (v < 1) return Status::Error("\"version\" must be at least 1");
  return v;
}

// Reads the fields of one JSON object into a message. The first failure is kept, as
// "<what>: <message>", and every later read leaves its output alone, so that a decoder reads
// its fields in order and then asks status(): the error is that of the first bad field.
class FieldReader {
 public:
  // Parses `json`; text that is not a JSON object is the first failure.
  FieldReader(std::string_view json, std::string what) : what_(std::move(what)) {
    j_ = Json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (j_.is_discarded()) {
      Keep("not valid JSON");
    } else if (!j_.is_object()) {
      Keep("not a JSON object");
    }
  }
  // Reads an object nested in another (the caller checked that `object` is one).
  FieldReader(const Json& object, std::string what) : j_(object), what_(std::move(what)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Keeps "<what>: <message>" unless a failure is kept already; returns the kept failure.
  Status Fail(std::string_view message) {
    Keep(message);
    return status_;
  }

  // Field `name` when present and not null; nullptr after a failure.
  const Json* Optional(const char* name) const {
    const Json* f = ok() ? Field(j_, name) : nullptr;
    return f == nullptr || f->is_null() ? nullptr : f;
  }

  // String field `name` (at most `max_bytes`; "" when absent or null and not `required`).
  void String(const char* name, bool required, size_t max_bytes, std::string& out) {
    if (!ok()) return;
    Result<std::string> s = StringField(j_, name, required, max_bytes);
    if (!s.ok()) {
      Keep(s.error());
      return;
    }
    out = std::move(*s);
  }

  // The "version" field: an integer of at least 1.
  void Version(int64_t& out) {
    if (!ok()) return;
    Result<int64_t> v = VersionField(j_);
    if (!v.ok()) {
      Keep(v.error());
      return;
    }
    out = *v;
  }

  // The "name" (a valid policy name) and "version" fields that name a policy.
  void PolicyNameAndVersion(std::string& name, int64_t& version) {
    String("name", true, 64, name);
    if (ok() && !IsValidPolicyName(name)) Keep("invalid \"name\"");
    Version(version);
  }

  // `message` when every read worked, else the first failure.
  template <typename T>
  Result<T> Done(T message) const {
    if (!ok()) return status_;
    return message;
  }

 private:
  void Keep(std::string_view message) {
    if (ok()) status_ = Status::Error(what_ + ": " + std::string(message));
  }

  Json j_;
  std::string what_;
  Status status_ = Status::Ok();
};

bool LabelKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || c == '/';
}

}  // namespace

std::string SigningInput(std::string_view name, int64_t version, int64_t seq,
                         std::string_view body) {
  std::string out = "edge-policy/2\n";
  out.append(name);
  out += '\n';
  out += std::to_string(version);
  out += '\n';
  out += std::to_string(seq);
  out += '\n';
  out.append(body);
  return out;
}

bool IsValidPolicyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!LabelKeyChar(c) || c == '/') return false;
  }
  return true;
}

Result<std::unique_ptr<SigningKey>> LoadSigningKey(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return Status::Error(path + ": not a PEM private key (" + OpenSslError() + ")");
  }
  if (!IsEd25519(key.get())) return Status::Error(path + ": not an Ed25519 key");
  return std::unique_ptr<SigningKey>(std::make_unique<OpenSslSigningKey>(std::move(key)));
}

Result<std::unique_ptr<VerifyKey>> ParseVerifyKeyPem(std::string_view pem) {
  if (pem.find("PRIVATE KEY") != std::string_view::npos) {
    return Status::Error("a private key was given where the public key belongs");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Status::Error("not a PEM public key (" + OpenSslError() + ")");
  if (!IsEd25519(key.get())) return Status::Error("not an Ed25519 key");
  return std::unique_ptr<VerifyKey>(std::make_unique<OpenSslVerifyKey>(std::move(key)));
}

Result<std::unique_ptr<VerifyKey>> LoadVerifyKey(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  auto key = ParseVerifyKeyPem(*text);
  if (!key.ok()) return Status::Error(path + ": " + key.error());
  return key;
}

Status GenerateKeyPair(const std::string& private_path, const std::string& public_path) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Status::Error("key generation failed: " + OpenSslError());
  BioPtr priv(BIO_new(BIO_s_mem()));
  if (!priv ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Error("key encoding failed: " + OpenSslError());
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(priv.get(), &data);
  const std::string priv_pem(data, n > 0 ? static_cast<size_t>(n) : 0);
  const std::string pub_pem = OpenSslSigningKey(std::move(key)).PublicKeyPem();
  if (pub_pem.empty()) return Status::Error("public key encoding failed");
  struct stat st {};
  if (::stat(private_path.c_str(), &st) == 0) return Status::Error(private_path + ": exists");
  if (::stat(public_path.c_str(), &st) == 0) return Status::Error(public_path + ": exists");
  if (Status s = WriteNewFile(private_path, priv_pem, 0600); !s.ok()) return s;
  return WriteNewFile(public_path, pub_pem, 0644);
}

Status SignDocument(const SigningKey& key, PolicyDocument& doc) {
  if (doc.seq < 1) return Status::Error("policy " + doc.name + ": no fleet sequence to sign");
  auto sig = key.Sign(SigningInput(doc.name, doc.version, doc.seq, doc.body));
  if (!sig.ok()) return sig.status();
  doc.signature = std::move(*sig);
  return Status::Ok();
}

Status VerifyDocument(const VerifyKey& key, const PolicyDocument& doc) {
  if (doc.signature.empty()) return Status::Error("the policy is not signed");
  if (doc.seq < 1) {
    return Status::Error("the policy carries no fleet sequence (signed by an older console)");
  }
  return key.Verify(SigningInput(doc.name, doc.version, doc.seq, doc.body), doc.signature);
}

std::string EncodePolicyDocument(const PolicyDocument& doc) {
  Json j = {{"type", "policy"}, {"name", doc.name},           {"version", doc.version},
            {"body", doc.body}, {"signature", doc.signature}, {"created_ms", doc.created_ms}};
  if (doc.seq > 0) j["seq"] = doc.seq;  // none: the decoder's 0 again
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string EncodePolicyReport(const PolicyReport& report) {
  std::string detail = report.detail.substr(0, kMaxDetailBytes);
  Json j = {{"type", "report"},      {"name", report.name},     {"version", report.version},
            {"state", report.state}, {"reason", report.reason}, {"detail", detail}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string EncodePolicyHello(const PolicyHello& hello) {
  Json labels = Json::object();
  for (const auto& [k, v] : hello.labels) labels[k] = v;
  Json applied = nullptr;
  if (hello.applied) applied = {{"name", hello.applied->first}, {"version", hello.applied->second}};
  Json j = {{"type", "hello"},
            {"node", hello.node},
            {"labels", labels},
            {"agent_version", hello.agent_version},
            {"applied", applied}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> PolicyMessageType(std::string_view json) {
  FieldReader f(json, "message");
  std::string type;
  f.String("type", true, 32, type);
  return f.Done(std::move(type));
}

Result<PolicyDocument> DecodePolicyDocument(std::string_view json) {
  PolicyDocument doc;
  FieldReader f(json, "policy");
  f.PolicyNameAndVersion(doc.name, doc.version);
  f.String("body", true, kMaxPolicyBodyBytes, doc.body);
  f.String("signature", false, 256, doc.signature);
  if (const Json* q = f.Optional("seq"); q != nullptr) {
    if (!q->is_number_integer() || (q->is_number_unsigned() && q->get<uint64_t>() > INT64_MAX) ||
        q->get<int64_t>() < 1) {
      return f.Fail("\"seq\" must be an integer of at least 1");
    }
    doc.seq = q->get<int64_t>();
  }
  if (const Json* c = f.Optional("created_ms"); c != nullptr && c->is_number_integer()) {
    doc.created_ms = c->get<int64_t>();
  }
  return f.Done(std::move(doc));
}

Result<PolicyReport> DecodePolicyReport(std::string_view json) {
  FieldReader f(json, "report");
  PolicyReport r;
  f.PolicyNameAndVersion(r.name, r.version);
  f.String("state", true, 16, r.state);
  if (f.ok() && r.state != "applied" && r.state != "rejected") {
    return f.Fail("\"state\" must be \"applied\" or \"rejected\"");
  }
  f.String("reason", false, 32, r.reason);
  f.String("detail", false, 64 * 1024, r.detail);
  if (r.detail.size() > kMaxDetailBytes) r.detail.resize(kMaxDetailBytes);
  return f.Done(std::move(r));
}

Result<PolicyHello> DecodePolicyHello(std::string_view json) {
  FieldReader f(json, "hello");
  PolicyHello h;
  f.String("node", true, 128, h.node);
  f.String("agent_version", false, 64, h.agent_version);
  if (const Json* labels = f.Optional("labels"); labels != nullptr) {
    if (!labels->is_object() || labels->size() > 64) {
      return f.Fail("\"labels\" must be an object of at most 64 strings");
    }
    for (const auto& [k, v] : labels->items()) {
      if (!v.is_string() || k.empty() || k.size() > 63 ||
          v.get_ref<const std::string&>().size() > 63) {
        return f.Fail("label \"" + k.substr(0, 63) + "\" is not a short string");
      }
      h.labels[k] = v.get<std::string>();
    }
  }
  if (const Json* applied = f.Optional("applied"); applied != nullptr) {
    if (!applied->is_object()) return f.Fail("\"applied\" must be an object or null");
    FieldReader a(*applied, "hello: applied");
    std::string name;
    int64_t version = 0;
    a.String("name", true, 64, name);
    a.Version(version);
    if (!a.ok()) return a.status();
    h.applied = std::make_pair(std::move(name), version);
  }
  return f.Done(std::move(h));
}

Result<std::map<std::string, std::string>> ParseLabels(std::string_view text) {
  std::map<std::string, std::string> out;
  text = TrimBlanks(text);
  if (text.empty()) return out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = TrimBlanks(text.substr(0, comma));
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::Error("label \"" + std::string(item) + "\" is not key=value");
    }
    const std::string_view key = TrimBlanks(item.substr(0, eq));
    const std::string_view value = TrimBlanks(item.substr(eq + 1));
    if (key.empty() || key.size() > 63) {
      return Status::Error("label key \"" + std::string(key) + "\" must be 1 to 63 characters");
    }
    for (char c : key) {
      if (!LabelKeyChar(c)) {
        return Status::Error("label key \"" + std::string(key) +
                             "\" may use only letters, digits and _.-/");
      }
    }
    if (value.size() > 63) {
      return Status::Error("label value of \"" + std::string(key) + "\" is over 63 characters");
    }
    for (char c : value) {
      if (!LabelKeyChar(c) || c == '/') {
        return Status::Error("label value of \"" + std::string(key) +
                             "\" may use only letters, digits and _.-");
      }
    }
    if (out.count(std::string(key)) != 0) {
      return Status::Error("label \"" + std::string(key) + "\" is given twice");
    }
    out.emplace(std::string(key), std::string(value));
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

}  // namespace edge::cloudsync
