//! Domain knowledge as data: transliteration families of name parts, and the
//! particles (articles, "son of") that carry little identity.
//!
//! A family groups the Latin spellings of one name that phonetic codes and
//! edit distance do not bring together on their own ("Mohamed" and "Mehmet",
//! "Yusuf" and "Youssef", "Aleksandr" and "Alexander" are fine for codes, but
//! belong here for one key). Spellings are folded ASCII, as
//! [`crate::normalise::parts`] gives them. Only spellings of the *same* name
//! go in one family: "Salah" and "Saleh" are different names and are not.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The families, one per line, spellings separated by spaces.
const FAMILIES: &str = "\
muhammad mohamed mohammed mohammad mohamad muhammed mohamud mohammod mehmet mehmed muhamad mouhamed mouhammad mohd mhmd mahomed muhamed mamadou mokhammad mukhammed magomed magomet mukhammad
ahmad ahmed ahmet ahmd achmed akhmed ahmat
mahmoud mahmud mahmod mahmood mahmut mahmd makhmud
mustafa mostafa moustafa mustapha moustapha mostapha mustafaa mstf
hussein husayn hussain husain hosseini hossein huseyin husein hsyn
hassan hasan hasen hsn
omar umar omer umer
osama usama ousama oussama usamah
yusuf youssef yousef yusef yousif youcef yousuf jusuf ysf
ibrahim ebrahim ibraheem brahim ibrahima ibragim
ismail ismael esmail ismayil ismayl smail ismaeel
abdullah abdallah abdulla abdellah abdalla abdollah
abdelhamid abdulhamid abdalhamid abdelhamed abdulhamit
abdeslam abdessalam abdesselam abdulsalam abdussalam abdesalam abdelsalam abdeslem abdalsalam abdassalam bdlslm
abdelkader abdulqadir abdelkadir abdelqader abdulkadir abdulkader
abderrahmane abdurrahman abdelrahman abdulrahman abderahmane abdarrahman abdalrahman abdourahmane
khaled khalid halid khalled
walid waleed oualid
said saeed sayed saiid
karim kareem kerim
rachid rashid rasheed reshit
yassine yassin yasin yaseen
nabil nabeel
jamal djamel jamel gamal cemal
jalal djalal celal
soufiane sufyan sofiane soufian
zakaria zakariya zakariyya zacharia
youness younes yunus younis
bilal belal
laden ladin
awlaki aulaqi awlaqi
foued fouad fuad
fatima fatma fatimah
aisha aicha ayesha aysha aise
khadija khadidja hatice kadija
mariam maryam meryem miriam
tsarnaev tsarnayev tsarnaiev
dzhokhar djokhar jokhar dzhohar
aleksandr alexander aleksander alexandr oleksandr alexandre
sergei sergey serguei sergiy serhiy
dmitri dmitry dmitriy dimitri
yuri yury yuriy iouri jurij
fyodor fedor feodor fiodor
mikhail mikhael
andrei andrey andriy
alexei aleksei alexey aleksey oleksiy
nikolai nikolay mykola
evgeny yevgeny evgeni yevgeniy
vladimir volodymyr
mehdi mahdi
musa moussa mousa
isa issa aissa
yahya yahia yehia
idris idriss
ilyas ilias elias ilyes
suleiman sulayman soliman sulejman suleyman
ramzan ramazan ramadan
";

/// Particles: articles and kinship words that are part of a name but do not
/// identify anyone on their own.
const PARTICLES: &[&str] = &[
    "al", "el", "ul", "il", "ad", "ar", "as", "ash", "at", "an", "az", "bin", "ben", "ibn", "bint",
    "bnt", "bn", "bw", "abu", "abou", "bou", "oglu", "de", "del", "der", "da", "di", "du", "des",
    "van", "von", "la", "le",
];

/// The Arabic article and its assimilated forms: a particle that may sit
/// inside a joined name ("Abd al-Hamid" and "Abdelhamid").
const ARTICLES: &[&str] = &[
    "al", "el", "ul", "il", "ad", "ar", "as", "ash", "at", "an", "az",
];

fn table() -> &'static HashMap<&'static str, u16> {
    static TABLE: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for (id, line) in FAMILIES.lines().enumerate() {
            for spelling in line.split_whitespace() {
                // First listing wins, so a spelling belongs to one family.
                map.entry(spelling).or_insert(id as u16);
            }
        }
        map
    })
}

/// The family of a folded name part, if the table knows it.
pub fn family(part: &str) -> Option<u16> {
    table().get(part).copied()
}

/// Whether a folded name part is a particle.
pub fn is_particle(part: &str) -> bool {
    PARTICLES.contains(&part)
}

/// Whether a folded name part is the Arabic article.
pub fn is_article(part: &str) -> bool {
    ARTICLES.contains(&part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_share_a_family_and_different_names_do_not() {
        assert_eq!(family("mohamed"), family("muhammad"));
        assert_eq!(family("mehmet"), family("mohammed"));
        assert_eq!(family("tsarnayev"), family("tsarnaev"));
        assert!(family("mohamed").is_some());
        assert_ne!(family("hassan"), family("hussein"));
        assert_eq!(family("saleh"), None);
        assert_eq!(family("nosuchname"), None);
    }

    #[test]
    fn particles_are_known() {
        assert!(is_particle("al") && is_particle("ibn") && is_article("el"));
        assert!(!is_particle("omar") && !is_article("bin"));
    }
}
