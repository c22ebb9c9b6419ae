#include <pg_query.h>
#include <stdint.h>

/* PostgreSQL's keyword table as its scanner holds it (common/kwlookup.h and parser/kwlist.h),
   read to learn each keyword's reservation level. */
typedef struct SwitchyardScanKeywordList {
    const char *kw_string;
    const uint16_t *kw_offsets;
    int (*hash)(const void *key, size_t keylen);
    int num_keywords;
    int max_kw_len;
} SwitchyardScanKeywordList;

extern const SwitchyardScanKeywordList ScanKeywords;
extern const uint8_t ScanKeywordCategories[];

static inline int switchyard_keyword_count(void) { return ScanKeywords.num_keywords; }

/* The keyword at `index` (0 ..< count), and its category: 0 unreserved, 1 column name,
   2 type or function name, 3 reserved. */
static inline const char *switchyard_keyword(int index, uint8_t *category) {
    *category = ScanKeywordCategories[index];
    return ScanKeywords.kw_string + ScanKeywords.kw_offsets[index];
}
