// A function's name from its address, for the NotRegisteredError that says which MPROC_TASK line
// to add. The dynamic symbol table (dladdr) only knows exported functions, and a program is rarely
// linked with -rdynamic; so we also read the full symbol table (.symtab) of the file the function
// lives in, as a debugger would. A stripped binary has none: then we know no name.
#include "symbol_name.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "demangle.h"

namespace mproc::detail {
namespace {

// A read-only private mapping of a whole file; empty when the file cannot be read.
class MappedFile {
 public:
  explicit MappedFile(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* data =
          ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (data != MAP_FAILED) {
        data_ = static_cast<const unsigned char*>(data);
        size_ = static_cast<std::size_t>(st.st_size);
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The `count` objects of type T at `offset`, or null if they do not lie within the file.
  template <class T>
  [[nodiscard]] const T* at(std::uint64_t offset, std::uint64_t count = 1) const {
    if (data_ == nullptr || offset > size_ || count > (size_ - offset) / sizeof(T)) return nullptr;
    if (offset % alignof(T) != 0) return nullptr;
    return reinterpret_cast<const T*>(data_ + offset);
  }

  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// The name of the function symbol at `value` in the file's .symtab, or "".
std::string symtab_name(const MappedFile& file, const Elf64_Ehdr& header, std::uint64_t value) {
  if (header.e_shentsize != sizeof(Elf64_Shdr)) return {};
  const auto* sections = file.at<Elf64_Shdr>(header.e_shoff, header.e_shnum);
  if (sections == nullptr) return {};
  for (std::size_t i = 0; i < header.e_shnum; ++i) {
    const Elf64_Shdr& table = sections[i];
    if (table.sh_type != SHT_SYMTAB || table.sh_link >= header.e_shnum) continue;
    const Elf64_Shdr& strings = sections[table.sh_link];
    const auto* symbols = file.at<Elf64_Sym>(table.sh_offset, table.sh_size / sizeof(Elf64_Sym));
    const auto* text = file.at<char>(strings.sh_offset, strings.sh_size);
    if (symbols == nullptr || text == nullptr) continue;
    for (std::size_t s = 0; s < table.sh_size / sizeof(Elf64_Sym); ++s) {
      const Elf64_Sym& symbol = symbols[s];
      if (ELF64_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_value != value) continue;
      if (symbol.st_name >= strings.sh_size) continue;
      const char* name = text + symbol.st_name;
      if (std::memchr(name, '\0', strings.sh_size - symbol.st_name) == nullptr) continue;
      return name;
    }
  }
  return {};
}

// The base address of the main program in memory (where its ELF header is mapped).
std::uintptr_t main_program_base(const Elf64_Ehdr& header) {
  std::uintptr_t phdr = ::getauxval(AT_PHDR);
  return phdr >= header.e_phoff ? phdr - header.e_phoff : 0;
}

std::string from_symbol_table(const Dl_info& info, std::uintptr_t address) {
  auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  // The main program's dli_fname is its argv[0], maybe relative: read it as /proc/self/exe,
  // provided that is where the address lives.
  bool absolute = info.dli_fname != nullptr && info.dli_fname[0] == '/';
  MappedFile file(absolute ? info.dli_fname : "/proc/self/exe");
  const auto* header = file.at<Elf64_Ehdr>(0);
  if (header == nullptr || std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 ||
      header->e_ident[EI_CLASS] != ELFCLASS64) {
    return {};
  }
  if (!absolute) {
    bool in_main_program = header->e_type == ET_EXEC ||
                           (header->e_type == ET_DYN && main_program_base(*header) == base);
    if (!in_main_program) return {};
  }
  std::uint64_t value = header->e_type == ET_EXEC ? address : address - base;
  return symtab_name(file, *header, value);
}

// "f(int)" -> "f"; "ns::(anonymous namespace)::f(int)" -> "ns::f"; "int g<int>(int)" -> "g<int>"
// (what one writes at namespace scope to name it).
std::string writable_name(const std::string& symbol) {
  std::string name = demangle(symbol.c_str());
  constexpr std::string_view kAnonymous = "(anonymous namespace)::";
  for (auto at = name.find(kAnonymous); at != std::string::npos; at = name.find(kAnonymous)) {
    name.erase(at, kAnonymous.size());
  }
  // A function template's demangled name starts with its return type ("int f<int>(int)"): keep
  // from the last top-level space to the parameter list.
  std::size_t start = 0, end = name.size();
  int depth = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '<') ++depth;
    if (c == '>' && depth > 0) --depth;
    if (depth != 0) continue;
    if (c == ' ') start = i + 1;
    if (c == '(') {
      end = i;
      break;
    }
  }
  return start < end ? name.substr(start, end - start) : name;
}

}  // namespace

std::string function_name(std::uintptr_t address) {
  Dl_info info{};
  void* pointer = reinterpret_cast<void*>(address);
  if (::dladdr(pointer, &info) == 0) return {};
  if (info.dli_sname != nullptr && info.dli_saddr == pointer) {
    return writable_name(info.dli_sname);
  }
  std::string symbol = from_symbol_table(info, address);
  return symbol.empty() ? symbol : writable_name(symbol);
}

}  // namespace mproc::detail
