#pragma once
/// BERT's tokenizer for an uncased WordPiece vocab.txt (one token a line, the line number its
/// id): basic tokenization (text cleaning, CJK characters split, lower-casing, accent
/// stripping, punctuation split), then greedy longest-match-first wordpieces with "##"
/// continuations, [UNK] for a word that cannot be covered, [CLS] ... [SEP] around the result.
///
/// Unicode coverage, without an ICU dependency: lower-casing and accent stripping cover ASCII,
/// Latin-1, Latin Extended-A, Greek and Cyrillic (the letters that NFD decomposes into a base
/// letter plus combining marks are mapped to the base letter; combining marks U+0300-U+036F
/// are dropped); punctuation is ASCII's, Latin-1's, General Punctuation (U+2000-U+206F) and
/// CJK Symbols (U+3000-U+303F). Outside those ranges a character is kept as it is.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qcodec::examples::bert {

/// The model's input for one sentence: token ids, token-type ids (all 0: one segment) and the
/// attention mask (1 = a real token, 0 = padding).
struct token_sequence {
  std::vector<int> ids;
  std::vector<int> type_ids;
  std::vector<std::uint8_t> mask;
  std::size_t size() const { return ids.size(); }
};

namespace unicode {

/// Code points of UTF-8 text; an invalid byte becomes U+FFFD.
inline std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const int length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + static_cast<std::size_t>(length) > text.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = length == 1 ? byte : byte & (0x7F >> length);
    bool valid = true;
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      valid = valid && (next & 0xC0) == 0x80;
      cp = (cp << 6) | (next & 0x3F);
    }
    out.push_back(valid ? cp : 0xFFFD);
    i += valid ? static_cast<std::size_t>(length) : 1;
  }
  return out;
}

inline std::string encode_utf8(std::u32string_view text) {
  std::string out;
  for (char32_t cp : text) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

inline bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// Control and format characters that BERT's cleaning removes (tab, newline, CR are whitespace).
inline bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return c < 0x20 || (c >= 0x7F && c < 0xA0) || c == 0xAD || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF;
}

/// BERT counts every non-alphanumeric printable ASCII character as punctuation, plus the
/// Unicode punctuation categories (here: the ranges named in the file comment).
inline bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  if (c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB || c == 0xBF) return true;
  return (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x205E) || (c >= 0x3001 && c <= 0x3003) ||
         (c >= 0x3008 && c <= 0x3011) || (c >= 0x3014 && c <= 0x301F);
}

inline bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

inline bool is_combining_mark(char32_t c) { return c >= 0x0300 && c <= 0x036F; }

inline char32_t to_lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    // Latin Extended-A pairs upper/lower case on even/odd code points, except 0x139-0x148 and
    // 0x179-0x17E, where the pairs start on odd code points.
    const bool odd_pairs = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (c == 0x178) return 0xFF;
    return odd_pairs ? (c % 2 == 1 ? c + 1 : c) : (c % 2 == 0 ? c + 1 : c);
  }
  if (c == 0x130) return 'i';
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;  // Greek capitals
  if (c >= 0x410 && c <= 0x42F) return c + 32;                 // Cyrillic capitals
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

/// The base letter of a lower-case letter that NFD decomposes into letter + combining marks
/// (Latin-1, Latin Extended-A, Greek tonos, Cyrillic й/ё); any other character unchanged.
inline char32_t strip_accent(char32_t c) {
  static constexpr std::u32string_view latin1_lower = U"aaaaaaæceeeeiiiiðnooooo÷øuuuuyþy";  // U+00E0-U+00FF
  if (c >= 0xE0 && c <= 0xFF) return latin1_lower[c - 0xE0];
  if (c >= 0xC0 && c <= 0xDE) {
    static constexpr std::u32string_view latin1_upper = U"AAAAAAÆCEEEEIIIIÐNOOOOO×ØUUUUYÞ";  // U+00C0-U+00DE
    return latin1_upper[c - 0xC0];
  }
  // U+0100-U+017F: each code point's base letter (æ-like letters and ĸ, ŉ, ſ have none).
  static constexpr std::u32string_view extended_a =
      U"AaAaAaCcCcCcCcDdĐđEeEeEeEeEeGgGgGgGgHhĦħIiIiIiIiIıĲĳJjKkĸLlLlLlĿŀŁłNnNnNnŉŊŋOoOoOoŒœRrRrRrSsSsSsSsTtTtŦŧUuUuUuUuUuUuWwYyYZzZzZzſ";
  if (c >= 0x100 && c <= 0x17F) return extended_a[c - 0x100];
  switch (c) {
    case 0x3AC: return 0x3B1;
    case 0x3AD: return 0x3B5;
    case 0x3AE: return 0x3B7;
    case 0x3AF: return 0x3B9;
    case 0x3CC: return 0x3BF;
    case 0x3CD: return 0x3C5;
    case 0x3CE: return 0x3C9;
    case 0x3CA: return 0x3B9;
    case 0x3CB: return 0x3C5;
    case 0x390: return 0x3B9;
    case 0x3B0: return 0x3C5;
    case 0x439: return 0x438;  // й -> и
    case 0x450: return 0x435;
    case 0x451: return 0x435;  // ё -> е
    case 0x453: return 0x433;
    case 0x457: return 0x456;
    case 0x45C: return 0x43A;
    case 0x45D: return 0x438;
    case 0x45E: return 0x443;
    default: return c;
  }
}

}  // namespace unicode

class wordpiece_tokenizer {
 public:
  /// Reads vocab.txt; it must hold [PAD], [UNK], [CLS] and [SEP].
  static wordpiece_tokenizer from_vocab_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open vocabulary '" + path.string() + "'");
    std::vector<std::string> tokens;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      tokens.push_back(line);
    }
    return wordpiece_tokenizer(std::move(tokens));
  }

  explicit wordpiece_tokenizer(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
    for (std::size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int>(i));
    pad_ = id_of("[PAD]");
    unk_ = id_of("[UNK]");
    cls_ = id_of("[CLS]");
    sep_ = id_of("[SEP]");
  }

  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  int pad_id() const { return pad_; }
  int unk_id() const { return unk_; }
  const std::string& token(int id) const { return tokens_.at(static_cast<std::size_t>(id)); }

  /// The words of BERT's basic tokenization (cleaned, lower-cased, accents stripped,
  /// punctuation and CJK characters as words of their own), UTF-8.
  std::vector<std::string> basic_tokens(std::string_view text) const {
    std::vector<std::string> words;
    std::u32string word;
    const auto flush = [&] {
      if (!word.empty()) words.push_back(unicode::encode_utf8(word));
      word.clear();
    };
    for (char32_t c : unicode::decode_utf8(text)) {
      if (c == 0 || c == 0xFFFD || unicode::is_control(c)) continue;
      if (unicode::is_whitespace(c)) {
        flush();
        continue;
      }
      c = unicode::strip_accent(unicode::to_lower(c));
      if (unicode::is_combining_mark(c)) continue;
      if (unicode::is_punctuation(c) || unicode::is_cjk(c)) {
        flush();
        word.push_back(c);
        flush();
        continue;
      }
      word.push_back(c);
    }
    flush();
    return words;
  }

  /// Greedy longest-match-first wordpieces of one basic token; [UNK] alone when some part of
  /// it matches no piece or it is longer than 100 characters.
  std::vector<int> wordpieces(std::string_view word) const {
    const std::u32string chars = unicode::decode_utf8(word);
    if (chars.size() > max_word_chars) return {unk_};
    std::vector<int> pieces;
    for (std::size_t start = 0; start < chars.size();) {
      int found = -1;
      std::size_t end = chars.size();
      for (; end > start; --end) {
        std::string piece = unicode::encode_utf8(std::u32string_view(chars).substr(start, end - start));
        if (start > 0) piece.insert(0, "##");
        if (const auto it = ids_.find(piece); it != ids_.end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) return {unk_};
      pieces.push_back(found);
      start = end;
    }
    return pieces;
  }

  /// [CLS] wordpieces [SEP], the wordpieces cut so the sequence holds at most `max_length`
  /// tokens (sentence-transformers' max_seq_length; at least 2); mask all 1, types all 0.
  token_sequence encode(std::string_view text, std::size_t max_length = 256) const {
    if (max_length < 2) throw std::invalid_argument("max_length must be at least 2 ([CLS] and [SEP])");
    token_sequence out;
    out.ids.push_back(cls_);
    for (const std::string& word : basic_tokens(text)) {
      for (int id : wordpieces(word)) out.ids.push_back(id);
      if (out.ids.size() >= max_length - 1) break;
    }
    if (out.ids.size() > max_length - 1) out.ids.resize(max_length - 1);
    out.ids.push_back(sep_);
    out.type_ids.assign(out.ids.size(), 0);
    out.mask.assign(out.ids.size(), 1);
    return out;
  }

 private:
  static constexpr std::size_t max_word_chars = 100;

  int id_of(const std::string& token) const {
    const auto it = ids_.find(token);
    if (it == ids_.end()) throw std::runtime_error("vocabulary has no '" + token + "' token");
    return it->second;
  }

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int> ids_;
  int pad_ = 0, unk_ = 0, cls_ = 0, sep_ = 0;
};

}  // namespace qcodec::examples::bert
