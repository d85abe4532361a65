// CTC prefix beam search with word-level language-model scoring, lexicon constraint,
// hotword boosting, n-best output, word timestamps and confidences; incremental.
//
// The Python wrapper is asr/decoding.py (BeamSearchDecoder); read its docstrings first.
// The language model is any Python object with the asr.lm.LanguageModel methods
// begin() -> state, score(state, word) -> (ln p, state), finish(state) -> ln p: this file
// never sees KenLM. Each LM query is made once per prefix (prefixes live in a trie whose
// nodes carry the LM state), so the Python calls stay few.
//
// Scores are natural logs. A hypothesis' score is
//   ln P_ctc(prefix | frames) + alpha * ln P_lm(words) + beta * words + hotword bonus
//   + alpha * (best unigram ln p of a word the partial word can still become)
//   + alpha * (unk_offset + unk_char_offset * characters) for each word, the partial one included,
//     outside the vocabulary (lexicon-free mode; the per-character part keeps misrecognized
//     runs from merging into one long unknown "word")
// The vocabulary trie exists with a lexicon, or lexicon-free with an LM that lists its words.
//
// Subword units (SentencePiece): `space` is then a virtual token, one past the vocabulary, and
// `word_start` flags the pieces that begin a word (their text starts with U+2581). Emitting such
// a piece walks the prefix trie through the virtual space first, so the previous word is
// completed (and LM-scored) exactly as a space token completes it for character units; the
// lexicon and hotwords are spelled in pieces, "characters" of the unknown-word charge are pieces.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kNone = -1;
constexpr int kForbidden = -2;  // child slot of a prefix the lexicon does not allow
constexpr int kOov = -3;        // lexicon state of a partial word that no known word starts with

inline float LogAdd(float a, float b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const float m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

// Small map token -> child index, linear search (nodes have few children).
struct Children {
  std::vector<std::pair<int, int>> items;
  int Find(int token) const {
    for (const auto& [t, c] : items)
      if (t == token) return c;
    return kNone;
  }
  void Add(int token, int child) { items.emplace_back(token, child); }
};

// Character trie of the allowed words (lexicon mode).
struct LexiconNode {
  Children children;
  int word = kNone;      // index of the word ending here
  float smear = kNegInf;  // best unigram ln p of the words at or below this node
};

// Aho-Corasick automaton over token ids for hotword phrases. `acc` is the bonus collected
// along the path from the root; a terminal node's phrase is complete.
struct HotNode {
  Children go;
  int fail = 0;
  float acc = 0.f;
  bool terminal = false;
};

// A node of the prefix trie: one distinct output prefix and everything derived from it.
struct Prefix {
  int parent;
  int token;          // kNone at the root
  float lm = 0.f;     // alpha * sum ln P_lm + beta * words, completed words only
  float partial = 0.f;  // alpha * smear of the partial word (lexicon mode)
  float bonus = 0.f;  // hotword bonus so far
  int words = 0;
  int word_len = 0;     // characters of the partial word
  int lexicon = kNone;  // lexicon node of the partial word
  int hot = 0;          // hotword automaton state
  py::object lm_state;  // LM state after the completed words
  Children children;
  int stamp = -1, slot = -1;  // bookkeeping for the next beam
  float Score() const { return lm + partial + bonus; }
};

struct Hyp {
  int node;
  float pb, pnb;  // ln P(prefix, ending in blank / in its last token)
  float Total() const { return LogAdd(pb, pnb); }
};

class CtcBeamSearch {
 public:
  CtcBeamSearch(int vocab_size, int blank, int space, std::vector<std::string> symbols, int beam_size,
                float beam_threshold, float token_min_logp, int max_tokens_per_frame, float alpha,
                float beta, py::object lm, std::vector<std::vector<int>> lexicon,
                std::vector<float> unigram, bool allow_oov, float unk_offset, float unk_char_offset,
                std::vector<std::vector<int>> hotwords, std::vector<float> hotword_weights,
                std::vector<bool> word_start)
      : vocab_size_(vocab_size),
        blank_(blank),
        space_(space),
        symbols_(std::move(symbols)),
        beam_size_(beam_size),
        beam_threshold_(beam_threshold),
        token_min_logp_(token_min_logp),
        max_tokens_(max_tokens_per_frame),
        alpha_(alpha),
        beta_(beta),
        allow_oov_(allow_oov),
        unk_offset_(unk_offset),
        unk_char_offset_(unk_char_offset),
        lm_(std::move(lm)),
        word_start_(std::move(word_start)) {
    pieces_ = !word_start_.empty();
    const int n_symbols = vocab_size_ + (pieces_ ? 1 : 0);  // pieces: the virtual space's symbol last
    if (static_cast<int>(symbols_.size()) != n_symbols) throw std::invalid_argument("symbols != vocab_size");
    if (pieces_ && (static_cast<int>(word_start_.size()) != vocab_size_ || space_ != vocab_size_))
      throw std::invalid_argument("word_start needs one flag per token and the virtual space at vocab_size");
    if (blank_ < 0 || blank_ >= vocab_size_ || space_ < 0 || space_ >= n_symbols || blank_ == space_)
      throw std::invalid_argument("blank and space must be distinct token ids inside the vocabulary");
    if (beam_size_ < 1) throw std::invalid_argument("beam_size must be at least 1");
    if (!lexicon.empty()) BuildLexicon(lexicon, unigram);
    BuildHotwords(hotwords, hotword_weights);
    Reset();
  }

  void Reset() {
    prefixes_.clear();
    Prefix root{kNone, kNone};
    root.lexicon = lexicon_.empty() ? kNone : 0;
    root.partial = lexicon_.empty() ? 0.f : alpha_ * lexicon_[0].smear * has_lm_();
    root.hot = HotStep(0, space_);  // utterances start at a word boundary
    if (!lm_.is_none()) root.lm_state = lm_.attr("begin")();
    prefixes_.push_back(std::move(root));
    beam_ = {Hyp{0, 0.f, kNegInf}};
    frames_ = 0;
    log_probs_.clear();
  }

  // Extend the beams by `log_probs` (frames, vocab) of natural-log posteriors.
  void Feed(py::array_t<float, py::array::c_style | py::array::forcecast> log_probs) {
    if (log_probs.ndim() != 2 || log_probs.shape(1) != vocab_size_)
      throw std::invalid_argument("log_probs must have shape (frames, " + std::to_string(vocab_size_) + ")");
    auto lp = log_probs.unchecked<2>();
    std::vector<int> cands;
    std::vector<Hyp> next;
    for (py::ssize_t i = 0; i < lp.shape(0); ++i, ++frames_) {
      const float* row = lp.data(i, 0);
      log_probs_.insert(log_probs_.end(), row, row + vocab_size_);
      Candidates(row, &cands);
      next.clear();
      const int t = frames_;
      auto add = [&](int node, float pb, float pnb) {
        Prefix& p = prefixes_[node];
        if (p.stamp != t) {
          p.stamp = t;
          p.slot = static_cast<int>(next.size());
          next.push_back(Hyp{node, pb, pnb});
        } else {
          Hyp& h = next[p.slot];
          h.pb = LogAdd(h.pb, pb);
          h.pnb = LogAdd(h.pnb, pnb);
        }
      };
      for (const Hyp& h : beam_) {
        const float total = h.Total();
        const int last = prefixes_[h.node].token;
        for (int c : cands) {
          const float p = row[c];
          if (c == blank_) {
            add(h.node, total + p, kNegInf);
          } else if (c == space_ && (last == space_ || last == kNone)) {
            add(h.node, kNegInf, total + p);  // no leading or double spaces
          } else if (c == last) {
            add(h.node, kNegInf, h.pnb + p);  // repeated token collapses
            if (h.pb != kNegInf) {
              const int child = ExtendToken(h.node, c);
              if (child >= 0) add(child, kNegInf, h.pb + p);
            }
          } else {
            const int child = ExtendToken(h.node, c);
            if (child >= 0) add(child, kNegInf, total + p);
          }
        }
      }
      if (next.empty()) {
        // Every extension this frame allows is out of the lexicon (the only likely tokens
        // spell a word it lacks): keep each prefix as it is, through a blank or a repeat of
        // its last token, instead of losing the utterance.
        for (const Hyp& h : beam_) {
          add(h.node, h.Total() + row[blank_], kNegInf);
          const int last = prefixes_[h.node].token;
          if (last != kNone && last < vocab_size_) add(h.node, kNegInf, h.pnb + row[last]);
        }
      }
      Prune(&next);
      beam_.swap(next);
    }
  }

  // Current best text (partial words included), without end-of-sentence scoring.
  std::string Best() const {
    if (beam_.empty()) return "";
    const Hyp* best = &beam_[0];
    for (const Hyp& h : beam_)
      if (h.Total() + prefixes_[h.node].Score() > best->Total() + prefixes_[best->node].Score()) best = &h;
    return Text(best->node);
  }

  // Finish the utterance: complete the last words, add the end-of-sentence LM score and
  // return up to `n_best` results, best first: dicts with text, score, acoustic_score and
  // words [(word, start_frame, end_frame_exclusive, confidence)].
  py::list Finalize(int n_best) {
    struct Final {
      int node;
      float score, acoustic;
    };
    // "a b" and "a b " end at the same node once the last word is completed: add them up.
    std::vector<Final> finals;
    auto add = [&finals](int node, float acoustic) {
      auto same = std::find_if(finals.begin(), finals.end(), [node](const Final& f) { return f.node == node; });
      if (same != finals.end())
        same->acoustic = LogAdd(same->acoustic, acoustic);
      else
        finals.push_back({node, 0.f, acoustic});
    };
    for (const Hyp& h : beam_) {
      int node = h.node;
      if (!AtBoundary(node)) {
        node = Extend(node, space_);  // complete the last word
        if (node < 0) continue;  // not a lexicon word
      }
      add(node, h.Total());
    }
    if (finals.empty()) {
      // Every hypothesis ends inside a word the lexicon cannot complete (the utterance ends
      // in, or got stuck at, an out-of-vocabulary word): keep each one up to its last
      // completed word rather than return nothing.
      for (const Hyp& h : beam_) {
        int node = h.node;
        while (!AtBoundary(node)) node = prefixes_[node].parent;
        add(node, h.Total());
      }
    }
    for (Final& f : finals) {
      const Prefix& p = prefixes_[f.node];  // ends at a word boundary: hotwords settled
      const float eos = lm_.is_none() ? 0.f : py::cast<float>(lm_.attr("finish")(p.lm_state));
      f.score = f.acoustic + p.Score() + alpha_ * eos;
    }
    std::sort(finals.begin(), finals.end(), [](const Final& a, const Final& b) { return a.score > b.score; });
    py::list out;
    for (const Final& f : finals) {
      if (static_cast<int>(out.size()) >= n_best) break;
      const std::string text = Text(f.node);
      py::dict d;
      d["text"] = text;
      d["score"] = f.score;
      d["acoustic_score"] = f.acoustic;
      d["words"] = Words(f.node);
      out.append(d);
    }
    return out;
  }

  int frames() const { return frames_; }
  size_t num_prefixes() const { return prefixes_.size(); }

 private:
  float has_lm_() const { return lm_.is_none() ? 0.f : 1.f; }
  bool AtBoundary(int node) const { return prefixes_[node].token == space_ || prefixes_[node].token == kNone; }

  void Candidates(const float* row, std::vector<int>* cands) const {
    cands->clear();
    int best = 0;
    for (int c = 0; c < vocab_size_; ++c) {
      if (row[c] > row[best]) best = c;
      if (row[c] >= token_min_logp_) cands->push_back(c);
    }
    if (cands->empty()) cands->push_back(best);
    if (max_tokens_ > 0 && static_cast<int>(cands->size()) > max_tokens_) {
      std::partial_sort(cands->begin(), cands->begin() + max_tokens_, cands->end(),
                        [row](int a, int b) { return row[a] > row[b]; });
      cands->resize(max_tokens_);
    }
  }

  // The node reached by emitting token `c` after `node`: a word-start piece goes through the
  // virtual space first (not at the start of the text, nor right after a space).
  int ExtendToken(int node, int c) {
    if (pieces_ && word_start_[c]) {
      const int last = prefixes_[node].token;
      if (last != kNone && last != space_) node = Extend(node, space_);
      if (node < 0) return node;
    }
    return Extend(node, c);
  }

  // The child of `node` by token `c` (created on first use), or kForbidden.
  int Extend(int node, int c) {
    const int found = prefixes_[node].children.Find(c);
    if (found != kNone) return found;
    const int child = MakeChild(node, c);
    prefixes_[node].children.Add(c, child);
    return child;
  }

  int MakeChild(int node, int c) {
    Prefix next{node, c};
    const Prefix& parent = prefixes_[node];
    next.lm = parent.lm;
    next.words = parent.words;
    next.lm_state = parent.lm_state;
    next.hot = HotStep(parent.hot, c);
    next.bonus = parent.bonus + hot_[next.hot].acc - hot_[parent.hot].acc;
    if (hot_[next.hot].terminal) next.hot = HotStep(0, space_);  // phrase banked; a new word starts
    if (c == space_) {
      const bool known = lexicon_.empty() || (parent.lexicon >= 0 && lexicon_[parent.lexicon].word != kNone);
      if (!known && !allow_oov_) return kForbidden;
      const std::string word = LastWord(node);
      next.words += 1;
      next.lm += beta_ + (known ? 0.f : OovCost(parent.word_len));
      if (!lm_.is_none()) {
        py::tuple r = lm_.attr("score")(parent.lm_state, word);
        next.lm += alpha_ * py::cast<float>(r[0]);
        next.lm_state = r[1];
      }
      next.lexicon = lexicon_.empty() ? kNone : 0;
      next.partial = lexicon_.empty() ? 0.f : alpha_ * lexicon_[0].smear * has_lm_();
    } else if (!lexicon_.empty()) {
      const int lex = parent.lexicon == kOov ? kNone : lexicon_[parent.lexicon].children.Find(c);
      if (lex == kNone && !allow_oov_) return kForbidden;
      next.lexicon = lex == kNone ? kOov : lex;
      next.word_len = parent.word_len + 1;
      next.partial = lex == kNone ? OovCost(next.word_len) : alpha_ * lexicon_[lex].smear * has_lm_();
    }
    prefixes_.push_back(std::move(next));
    return static_cast<int>(prefixes_.size()) - 1;
  }

  // An LM-side charge, weighted by alpha like every LM score (alpha 0: the acoustics alone).
  float OovCost(int chars) const { return alpha_ * (unk_offset_ + unk_char_offset_ * static_cast<float>(chars)); }

  std::string LastWord(int node) const {
    std::string rev;
    for (int n = node; n > 0 && prefixes_[n].token != space_; n = prefixes_[n].parent)
      rev += std::string(symbols_[prefixes_[n].token].rbegin(), symbols_[prefixes_[n].token].rend());
    return Plain(std::string(rev.rbegin(), rev.rend()));
  }

  // Text without the word-start marks of pieces (U+2581, 3 bytes in UTF-8).
  std::string Plain(std::string text) const {
    if (!pieces_) return text;
    static const std::string mark = "\xe2\x96\x81";
    for (size_t at = text.find(mark); at != std::string::npos; at = text.find(mark, at)) text.erase(at, mark.size());
    return text;
  }

  std::vector<int> Path(int node) const {
    std::vector<int> path;
    for (int n = node; n > 0; n = prefixes_[n].parent) path.push_back(n);
    std::reverse(path.begin(), path.end());
    return path;
  }

  std::string Text(int node) const {
    std::string text;
    for (int n : Path(node)) text += Plain(symbols_[prefixes_[n].token]);
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
  }

  // Word times and confidences from the Viterbi CTC alignment of the prefix's tokens over
  // every frame fed: a word spans its characters' frames; its confidence is the geometric
  // mean over its characters of their best posterior.
  py::list Words(int node) const {
    std::vector<int> tokens, emitted, index;  // the path; the tokens the model emitted; path -> emitted
    for (int n : Path(node)) tokens.push_back(prefixes_[n].token);
    while (!tokens.empty() && tokens.back() == space_) tokens.pop_back();
    for (int t : tokens) {
      const bool virtual_space = pieces_ && t == space_;
      index.push_back(virtual_space ? kNone : static_cast<int>(emitted.size()));
      if (!virtual_space) emitted.push_back(t);
    }
    const std::vector<Span> spans = Align(emitted);
    py::list words;
    std::string word;
    int start = 0, end = 0, chars = 0;
    float logp = 0.f;
    for (size_t i = 0; i <= tokens.size(); ++i) {
      if (i == tokens.size() || tokens[i] == space_) {
        if (!word.empty()) words.append(py::make_tuple(word, start, end + 1, std::exp(logp / chars)));
        word.clear();
        logp = 0.f;
        chars = 0;
        continue;
      }
      const Span& span = spans[index[i]];
      if (word.empty()) start = span.start;
      word += Plain(symbols_[tokens[i]]);
      end = span.end;
      logp += span.logp;
      ++chars;
    }
    return words;
  }

  struct Span {
    int start = 0, end = 0;
    float logp = kNegInf;
  };

  std::vector<Span> Align(const std::vector<int>& tokens) const {
    const int T = frames_, L = static_cast<int>(tokens.size()), S = 2 * L + 1;
    std::vector<Span> spans(L);
    if (L == 0 || T == 0) return spans;
    auto label = [&](int s) { return s % 2 ? tokens[s / 2] : blank_; };
    auto lp = [&](int t, int s) { return log_probs_[static_cast<size_t>(t) * vocab_size_ + label(s)]; };
    std::vector<float> score(S, kNegInf), prev(S);
    std::vector<int8_t> back(static_cast<size_t>(T) * S, 0);
    score[0] = lp(0, 0);
    if (S > 1) score[1] = lp(0, 1);
    for (int t = 1; t < T; ++t) {
      prev.swap(score);
      for (int s = 0; s < S; ++s) {
        float best = prev[s];
        int8_t from = 0;
        if (s >= 1 && prev[s - 1] > best) best = prev[s - 1], from = 1;
        if (s >= 2 && s % 2 && tokens[s / 2] != tokens[s / 2 - 1] && prev[s - 2] > best) best = prev[s - 2], from = 2;
        score[s] = best + lp(t, s);
        back[static_cast<size_t>(t) * S + s] = from;
      }
    }
    int s = (S >= 2 && score[S - 2] > score[S - 1]) ? S - 2 : S - 1;
    if (score[s] == kNegInf) {  // too few frames for these tokens: spread them evenly
      for (int i = 0; i < L; ++i) spans[i] = {i * T / L, std::max(i * T / L, (i + 1) * T / L - 1), 0.f};
      return spans;
    }
    for (int t = T - 1; t >= 0; --t) {
      if (s % 2) {
        Span& sp = spans[s / 2];
        if (sp.logp == kNegInf) sp.end = t;
        sp.start = t;
        sp.logp = std::max(sp.logp, lp(t, s));
      }
      if (t > 0) s -= back[static_cast<size_t>(t) * S + s];
    }
    return spans;
  }

  // Keep the beam_size best by score (within beam_threshold of the best), and the prefix the
  // acoustics alone rank first (the anchor) beside them. The LM's charges are lumps paid on
  // one frame (the smear falling as a word narrows, the unknown-word charge where it leaves
  // the vocabulary) while a deletion's acoustic cost is paid frame by frame: a narrow beam
  // would keep the prefix that blanks through a word and drop the one spelling it before the
  // acoustics could outweigh the lump ("trning" at beam 1 where greedy reads "training").
  // With the anchor the spelling survives until the scores are compared with the evidence in.
  void Prune(std::vector<Hyp>* next) {
    if (next->empty()) return;
    auto score = [this](const Hyp& h) { return h.Total() + prefixes_[h.node].Score(); };
    float best = kNegInf;
    const Hyp* loudest = &next->front();
    for (const Hyp& h : *next) {
      best = std::max(best, score(h));
      if (h.Total() > loudest->Total()) loudest = &h;
    }
    const Hyp anchor = *loudest;
    if (beam_threshold_ > 0) {
      const float floor = best - beam_threshold_;
      next->erase(std::remove_if(next->begin(), next->end(), [&](const Hyp& h) { return score(h) < floor; }),
                  next->end());
    }
    if (static_cast<int>(next->size()) > beam_size_) {
      std::nth_element(next->begin(), next->begin() + beam_size_, next->end(),
                       [&](const Hyp& a, const Hyp& b) { return score(a) > score(b); });
      next->resize(beam_size_);
    }
    if (std::none_of(next->begin(), next->end(), [&](const Hyp& h) { return h.node == anchor.node; }))
      next->push_back(anchor);
  }

  void BuildLexicon(const std::vector<std::vector<int>>& words, const std::vector<float>& unigram) {
    if (unigram.size() != words.size()) throw std::invalid_argument("unigram scores must match the lexicon");
    lexicon_.assign(1, LexiconNode{});
    for (size_t w = 0; w < words.size(); ++w) {
      int node = 0;
      lexicon_[0].smear = std::max(lexicon_[0].smear, unigram[w]);
      for (int c : words[w]) {
        if (c < 0 || c >= vocab_size_ || c == blank_ || c == space_)
          throw std::invalid_argument("lexicon words must be non-empty runs of non-blank, non-space tokens");
        int child = lexicon_[node].children.Find(c);
        if (child == kNone) {
          child = static_cast<int>(lexicon_.size());
          lexicon_[node].children.Add(c, child);
          lexicon_.emplace_back();
        }
        node = child;
        lexicon_[node].smear = std::max(lexicon_[node].smear, unigram[w]);
      }
      if (words[w].empty()) throw std::invalid_argument("empty lexicon word");
      lexicon_[node].word = static_cast<int>(w);
    }
  }

  // Phrases arrive as token ids without boundary spaces; each is matched as
  // " phrase " (whole words), its weight spread over the phrase tokens and the final space.
  void BuildHotwords(const std::vector<std::vector<int>>& phrases, const std::vector<float>& weights) {
    if (phrases.size() != weights.size()) throw std::invalid_argument("one weight per hotword");
    hot_.assign(1, HotNode{});
    for (size_t k = 0; k < phrases.size(); ++k) {
      std::vector<int> seq{space_};
      seq.insert(seq.end(), phrases[k].begin(), phrases[k].end());
      seq.push_back(space_);
      const float per_token = weights[k] / static_cast<float>(seq.size() - 1);
      int node = 0;
      for (size_t i = 0; i < seq.size(); ++i) {
        int child = hot_[node].go.Find(seq[i]);
        const float acc = hot_[node].acc + (i == 0 ? 0.f : per_token);
        if (child == kNone) {
          child = static_cast<int>(hot_.size());
          hot_[node].go.Add(seq[i], child);
          hot_.push_back(HotNode{});
          hot_[child].acc = acc;
        } else {
          hot_[child].acc = std::max(hot_[child].acc, acc);
        }
        node = child;
      }
      hot_[node].terminal = true;
    }
    // Failure links, breadth first.
    std::queue<int> queue;
    for (const auto& [t, c] : hot_[0].go.items) {
      hot_[c].fail = 0;
      queue.push(c);
    }
    while (!queue.empty()) {
      const int n = queue.front();
      queue.pop();
      for (const auto& [t, c] : hot_[n].go.items) {
        int f = hot_[n].fail;
        while (f != 0 && hot_[f].go.Find(t) == kNone) f = hot_[f].fail;
        const int g = hot_[f].go.Find(t);
        hot_[c].fail = (g != kNone && g != c) ? g : 0;
        queue.push(c);
      }
    }
  }

  int HotStep(int state, int token) const {
    if (hot_.size() <= 1) return 0;
    while (true) {
      const int g = hot_[state].go.Find(token);
      if (g != kNone) return g;
      if (state == 0) return 0;
      state = hot_[state].fail;
    }
  }

  int vocab_size_, blank_, space_;
  std::vector<std::string> symbols_;
  int beam_size_;
  float beam_threshold_, token_min_logp_;
  int max_tokens_;
  float alpha_, beta_;
  bool allow_oov_;    // lexicon-free with a known vocabulary: unknown words cost unk_offset
  float unk_offset_, unk_char_offset_;
  py::object lm_;
  std::vector<bool> word_start_;  // pieces: which tokens begin a word
  bool pieces_ = false;
  std::vector<LexiconNode> lexicon_;
  std::vector<HotNode> hot_;
  std::vector<Prefix> prefixes_;
  std::vector<Hyp> beam_;
  std::vector<float> log_probs_;  // every frame fed, for the final alignment
  int frames_ = 0;
};

}  // namespace

PYBIND11_MODULE(_beam, m) {
  m.doc() = "CTC prefix beam search core (see asr/decoding.py)";
  py::class_<CtcBeamSearch>(m, "CtcBeamSearch")
      .def(py::init<int, int, int, std::vector<std::string>, int, float, float, int, float, float, py::object,
                    std::vector<std::vector<int>>, std::vector<float>, bool, float, float,
                    std::vector<std::vector<int>>, std::vector<float>, std::vector<bool>>(),
           py::arg("vocab_size"), py::arg("blank"), py::arg("space"), py::arg("symbols"), py::arg("beam_size"),
           py::arg("beam_threshold"), py::arg("token_min_logp"), py::arg("max_tokens_per_frame"), py::arg("alpha"),
           py::arg("beta"), py::arg("lm"), py::arg("lexicon"), py::arg("unigram"), py::arg("allow_oov"),
           py::arg("unk_offset"), py::arg("unk_char_offset"), py::arg("hotwords"), py::arg("hotword_weights"),
           py::arg("word_start") = std::vector<bool>{})
      .def("reset", &CtcBeamSearch::Reset)
      .def("feed", &CtcBeamSearch::Feed, py::arg("log_probs"))
      .def("best", &CtcBeamSearch::Best)
      .def("finalize", &CtcBeamSearch::Finalize, py::arg("n_best") = 1)
      .def_property_readonly("frames", &CtcBeamSearch::frames)
      .def_property_readonly("num_prefixes", &CtcBeamSearch::num_prefixes);
}
