// dispatch-keygen [--out PREFIX] [--force]: a new Ed25519 key pair for
// request signatures. With --out, writes PREFIX.key (PKCS#8 PEM, mode 0600,
// never over an existing file unless --force) and PREFIX.pub (SPKI PEM);
// always prints the environment variable lines to paste into a deployment.
//
// Not for: key storage or distribution (see docs/security.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "dispatch/security/keys.h"

namespace {

constexpr std::string_view kUsage =
    "usage: dispatch-keygen [--out PREFIX] [--force]\n"
    "  Generates an Ed25519 key pair for Dispatch request signatures.\n"
    "  --out PREFIX  write PREFIX.key (private, PKCS#8 PEM, mode 0600) and\n"
    "                PREFIX.pub (public, SPKI PEM)\n"
    "  --force       replace existing files\n";

// A PEM on one line with literal "\n", as environment variables carry it.
std::string env_form(const std::string& pem) {
  std::string out;
  for (char c : pem) {
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  while (out.size() >= 2 && out.compare(out.size() - 2, 2, "\\n") == 0) out.resize(out.size() - 2);
  return out;
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Creates `path` with `mode`. Without `force` the file must not exist
// (O_EXCL); with it, the content goes to a fresh temporary file that is then
// renamed over `path`, so a reader never sees a half-written key and the
// mode is right from the first byte.
bool write_file(const std::string& path, const std::string& data, mode_t mode, bool force) {
  std::string target = path;
  std::string temp;
  int fd;
  if (force) {
    temp = path + ".tmpXXXXXX";
    fd = ::mkstemp(temp.data());  // mode 0600
    if (fd >= 0 && ::fchmod(fd, mode) != 0) {
      ::close(fd);
      fd = -1;
    }
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  }
  if (fd < 0) {
    std::cerr << "dispatch-keygen: cannot create " << (temp.empty() ? path : temp) << ": "
              << std::strerror(errno)
              << (errno == EEXIST ? " (use --force to replace it)" : "") << "\n";
    return false;
  }
  const bool ok = write_all(fd, data) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (ok && (temp.empty() || ::rename(temp.c_str(), target.c_str()) == 0)) return true;
  std::cerr << "dispatch-keygen: cannot write " << path << ": " << std::strerror(ok ? errno : saved)
            << "\n";
  if (!temp.empty()) ::unlink(temp.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string prefix;
  bool force = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--out") {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') {
        std::cerr << "dispatch-keygen: --out needs a PREFIX\n" << kUsage;
        return 2;
      }
      prefix = argv[++i];
    } else if (arg == "--force") {
      force = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "dispatch-keygen: unexpected argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }

  const auto key = dispatch::security::SigningKey::generate();
  const std::string private_pem = key.to_pem();
  const std::string public_pem = key.public_key().to_pem();

  if (!prefix.empty()) {
    const std::string key_path = prefix + ".key";
    const std::string pub_path = prefix + ".pub";
    if (!force) {
      // Refuse before writing anything, so a refusal leaves no half pair.
      struct stat st;
      for (const auto& path : {key_path, pub_path}) {
        if (::lstat(path.c_str(), &st) == 0) {
          std::cerr << "dispatch-keygen: " << path << " exists (use --force to replace it)\n";
          return 1;
        }
      }
    }
    if (!write_file(key_path, private_pem, 0600, force) ||
        !write_file(pub_path, public_pem, 0644, force)) {
      return 1;
    }
    std::cerr << "wrote " << key_path << " (private, mode 0600) and " << pub_path << "\n";
  } else {
    std::cout << private_pem << public_pem;
  }
  std::cout << "# signer (client or scheduler):\n"
            << "DISPATCH_SIGNING_KEY=\"" << env_form(private_pem) << "\"\n"
            << "# verifier (endpoint):\n"
            << "DISPATCH_VERIFICATION_KEY=\"" << env_form(public_pem) << "\"\n";
  return 0;
}
