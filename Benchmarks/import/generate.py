#!/usr/bin/env python3
"""Writes a messy landowner-lead CSV: python3 generate.py ROWS OUT.csv [SEED]

Deterministic from the seed. Mixes what real lists carry: phone shapes of every kind, bad phones
(N11, 555-01xx, short, toll-free), about 10% rows repeating an earlier owner's phone and 3%
repeating an earlier owner + property with a new phone, mixed case, stray whitespace, state names
instead of codes, "COUNTY" suffixes, acreage with units, quoted fields with commas and line
breaks, CRLF line ends and a byte-order mark. Every row has the header's column count (so the
raw psql baseline can load it too).
"""
import random
import sys

FIRST = ["JOHN", "mary", "Carlos", "ana", "ROBERT", "Linda", "james", "PATRICIA", "Miguel", "josé", "Wei", "Fatima"]
LAST = ["SMITH", "garcia", "Johnson", "NGUYEN", "brown", "Martínez", "o'brien", "McDonald", "lee", "WILLIAMS"]
STATES = ["TX", "texas", "Tx ", "FL", "florida", "OK", "Oklahoma", "NM", "n. carolina", "AZ", "Texxas", "GA"]
COUNTIES = ["TRAVIS COUNTY", "bexar", "Harris County", "st. landry parish", "  Pima  ", "DONA ANA", "Tulsa county"]
HEADER = ["Owner First Name", "Owner Last Name", "Phone 1", "Phone 2", "Phone 2 Type", "Mailing Address",
          "Mailing City", "Mailing State", "Mailing Zip", "Property Address", "County", "Property State",
          "APN", "Lot Acres", "Notes"]


def phone(rng, i):
    n = rng.random()
    area = rng.choice(["512", "214", "737", "469", "305", "405", "505", "602"])
    exch = str(200 + (i * 7919) % 799)
    line = "%04d" % ((i * 104729) % 10000)
    if n < 0.03:
        return "(911) 555-" + line
    if n < 0.05:
        return area + "-555-01" + line[:2]
    if n < 0.07:
        return exch + "-" + line
    if n < 0.08:
        return "(800) " + exch + "-" + line
    shape = rng.randrange(6)
    return [f"({area}) {exch}-{line}", f"{area}.{exch}.{line}", f"+1 {area} {exch} {line}", f"1{area}{exch}{line}",
            f" {area}-{exch}-{line} ext 2", f"{area}{exch}{line}"][shape]


def quote(v):
    if any(c in v for c in ',"\r\n'):
        return '"' + v.replace('"', '""') + '"'
    return v


def main():
    rows, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    recent = []
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write("\ufeff" + ",".join(HEADER) + "\r\n")
        for i in range(rows):
            r = rng.random()
            if recent and r < 0.10:
                base = rng.choice(recent)  # same phone as an earlier row: a duplicate
                row = list(base)
                row[0] = row[0].upper() if rng.random() < 0.5 else "  " + row[0].lower() + " "
            elif recent and r < 0.13:
                base = rng.choice(recent)  # same owner and property, another phone
                row = list(base)
                row[2] = phone(rng, i + rows)
                row[9] = "  " + row[9].upper()
            else:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                street = f"{rng.randrange(1, 99999)} {rng.choice(['County Road', 'RANCH RD', 'Farm-to-Market', 'oak st'])} {rng.randrange(1, 999)}"
                row = [
                    " " + first if rng.random() < 0.1 else first, last, phone(rng, i),
                    phone(rng, i + 3 * rows) if rng.random() < 0.4 else "",
                    rng.choice(["Mobile", "landline", "", "VOIP", "cell"]),
                    f"PO Box {rng.randrange(1, 9999)}", rng.choice(["AUSTIN", "san antonio", "Tulsa ", "Miami"]),
                    rng.choice(STATES), rng.choice(["78701", "7301", "73301-1234", "abc", ""]),
                    street, rng.choice(COUNTIES), rng.choice(STATES), f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{i % 1000:03d}",
                    rng.choice(["12.5", "40 ac", "1,250 acres", "lots", "", "0.75"]),
                    rng.choice(["", "called twice, no answer", 'said "maybe"', "line one\nline two", "inherited"]),
                ]
                if len(recent) < 5000:
                    recent.append(row)
                elif rng.random() < 0.05:
                    recent[rng.randrange(5000)] = row
            f.write(",".join(quote(v) for v in row) + "\r\n")


if __name__ == "__main__":
    main()
