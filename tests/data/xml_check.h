// A small XML well-formedness checker for the plot tests, so that they do not
// depend on xmllint being installed. It checks what a browser's XML parser
// rejects: UTF-8 and XML's character set, balanced and properly nested tags,
// one root element, attributes `name="value"` (or single quotes) written once
// each, and entity references limited to the five predefined ones and
// character references. No DTDs, no CDATA (the plots use neither).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace gradc::test {

// "" when `doc` is well-formed, otherwise what is wrong and where (byte offset).
inline std::string xml_problem(std::string_view doc) {
  // Encoding: valid UTF-8 of XML characters only.
  for (size_t i = 0; i < doc.size();) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(doc[k]); };
    unsigned c = b(i);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > doc.size()) return "bad utf-8 at byte " + std::to_string(i);
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
      if ((b(i + k) & 0xc0) != 0x80) return "bad utf-8 at byte " + std::to_string(i);
      cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return "bad utf-8 at byte " + std::to_string(i);
    if ((cp < 0x20 && cp != 9 && cp != 10 && cp != 13) || cp == 0xfffe || cp == 0xffff)
      return "character not allowed in xml at byte " + std::to_string(i);
    i += len;
  }

  size_t i = 0;
  auto at = [&](const std::string& what) { return what + " at byte " + std::to_string(i); };
  auto name_start = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; };
  auto name_char = [&](char c) { return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; };
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto read_name = [&]() {
    size_t b = i;
    if (i < doc.size() && name_start(doc[i]))
      while (i < doc.size() && name_char(doc[i])) ++i;
    return std::string(doc.substr(b, i - b));
  };
  // At '&': a predefined entity or a character reference, then ';'.
  auto entity = [&]() -> bool {
    size_t semi = doc.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) return false;
    std::string_view ref = doc.substr(i + 1, semi - i - 1);
    i = semi + 1;
    if (ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos") return true;
    if (ref.size() < 2 || ref[0] != '#') return false;
    bool hex = ref[1] == 'x';
    std::string_view digits = ref.substr(hex ? 2 : 1);
    if (digits.empty()) return false;
    uint32_t v = 0;
    for (char c : digits) {
      int d = c >= '0' && c <= '9' ? c - '0' : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0 || v > 0x10ffff) return false;
      v = v * (hex ? 16 : 10) + static_cast<uint32_t>(d);
    }
    return v == 9 || v == 10 || v == 13 || (v >= 0x20 && v <= 0xd7ff) || (v >= 0xe000 && v <= 0xfffd) || (v >= 0x10000 && v <= 0x10ffff);
  };

  std::vector<std::string> open;
  int roots = 0;
  if (doc.substr(0, 5) == "<?xml") {
    size_t end = doc.find("?>");
    if (end == std::string_view::npos) return "unterminated xml declaration";
    i = end + 2;
  }
  while (i < doc.size()) {
    char c = doc[i];
    if (c == '&') {
      if (open.empty()) return at("text outside the root element");
      if (!entity()) return at("bad entity reference");
      continue;
    }
    if (c != '<') {
      if (open.empty() && !space(c)) return at("text outside the root element");
      ++i;
      continue;
    }
    if (doc.substr(i, 4) == "<!--") {
      size_t end = doc.find("-->", i + 4);
      if (end == std::string_view::npos) return at("unterminated comment");
      i = end + 3;
      continue;
    }
    if (doc.substr(i, 2) == "</") {
      i += 2;
      std::string name = read_name();
      while (i < doc.size() && space(doc[i])) ++i;
      if (i >= doc.size() || doc[i] != '>') return at("bad end tag");
      if (open.empty() || open.back() != name) return at("end tag </" + name + "> does not match");
      open.pop_back();
      ++i;
      continue;
    }
    ++i;  // '<'
    std::string name = read_name();
    if (name.empty()) return at("bad tag name");
    if (open.empty() && roots++ > 0) return at("second root element");
    std::set<std::string> attrs;
    for (;;) {
      bool had_space = false;
      while (i < doc.size() && space(doc[i])) ++i, had_space = true;
      if (i >= doc.size()) return at("unterminated tag");
      if (doc[i] == '>') {
        open.push_back(name);
        ++i;
        break;
      }
      if (doc.substr(i, 2) == "/>") {
        i += 2;
        break;
      }
      if (!had_space) return at("no space before an attribute");
      std::string attr = read_name();
      if (attr.empty()) return at("bad attribute name");
      if (!attrs.insert(attr).second) return at("attribute " + attr + " written twice");
      while (i < doc.size() && space(doc[i])) ++i;
      if (i >= doc.size() || doc[i] != '=') return at("attribute " + attr + " has no value");
      ++i;
      while (i < doc.size() && space(doc[i])) ++i;
      if (i >= doc.size() || (doc[i] != '"' && doc[i] != '\'')) return at("attribute " + attr + " is not quoted");
      char quote = doc[i++];
      while (i < doc.size() && doc[i] != quote) {
        if (doc[i] == '<') return at("'<' in an attribute value");
        if (doc[i] == '&') {
          if (!entity()) return at("bad entity reference");
        } else {
          ++i;
        }
      }
      if (i >= doc.size()) return at("unterminated attribute value");
      ++i;
    }
  }
  if (!open.empty()) return "element <" + open.back() + "> is not closed";
  if (roots != 1) return "no root element";
  return "";
}

}  // namespace gradc::test
